/* The benchmark's floor (issue 21): the least a warm run can do. It joins an existing,
 * already-bound VRF cgroup and execs the command, and nothing else: no lookup, no lock, no
 * check, no probe. `floor CGROUP_DIR COMMAND [ARG...]`, COMMAND a path (no PATH search).
 * Built static (cc -static -O2) by tests/vm/bench.sh, so it starts the way the static
 * launcher bin/vrfexec does: no dynamic loader. Any failure is exit 125, as vrfexec's. */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	char path[4096];
	if (argc < 3) {
		fputs("usage: floor CGROUP_DIR COMMAND [ARG...]\n", stderr);
		return 125;
	}
	size_t len = strlen(argv[1]);
	if (len + sizeof("/cgroup.procs") > sizeof(path)) {
		fputs("floor: cgroup path too long\n", stderr);
		return 125;
	}
	memcpy(path, argv[1], len);
	memcpy(path + len, "/cgroup.procs", sizeof("/cgroup.procs"));
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, "0", 1) != 1) {
		perror("floor: cannot join the cgroup");
		return 125;
	}
	close(fd);
	execv(argv[2], argv + 2);
	perror("floor: cannot run the command");
	return 126;
}
