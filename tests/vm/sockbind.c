/* A cgroup/sock_create program that binds every new socket to one ifindex, attached with
 * BPF_F_ALLOW_MULTI: what systemd's BindNetworkInterface= (or another tool) puts on a unit's
 * cgroup. The fail-closed scenarios put it on an ancestor of vrfexec's cgroup, where the kernel
 * runs it after vrfexec's program, so its write wins.
 *
 * usage: sockbind CGROUP_DIR IFINDEX   (the program stays until the cgroup is removed) */
#include <fcntl.h>
#include <linux/bpf.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static int sys_bpf(int cmd, union bpf_attr *attr)
{
	return syscall(SYS_bpf, cmd, attr, sizeof(*attr));
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: sockbind CGROUP_DIR IFINDEX\n");
		return 2;
	}
	int ifindex = atoi(argv[2]);
	/* r2 = ifindex; ((struct bpf_sock *)r1)->bound_dev_if = r2; return 1 (allow) */
	struct bpf_insn insns[] = {
		{ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_2, .imm = ifindex },
		{ .code = BPF_STX | BPF_MEM | BPF_W, .dst_reg = BPF_REG_1, .src_reg = BPF_REG_2,
		  .off = offsetof(struct bpf_sock, bound_dev_if) },
		{ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = 1 },
		{ .code = BPF_JMP | BPF_EXIT },
	};
	union bpf_attr load;
	memset(&load, 0, sizeof(load));
	load.prog_type = BPF_PROG_TYPE_CGROUP_SOCK;
	load.expected_attach_type = BPF_CGROUP_INET_SOCK_CREATE;
	load.insns = (uintptr_t)insns;
	load.insn_cnt = sizeof(insns) / sizeof(insns[0]);
	load.license = (uintptr_t)"GPL";
	strncpy(load.prog_name, "test_bindall", sizeof(load.prog_name) - 1);
	int prog = sys_bpf(BPF_PROG_LOAD, &load);
	if (prog < 0) {
		perror("sockbind: BPF_PROG_LOAD");
		return 1;
	}
	int cg = open(argv[1], O_RDONLY | O_DIRECTORY);
	if (cg < 0) {
		perror("sockbind: open cgroup");
		return 1;
	}
	union bpf_attr attach;
	memset(&attach, 0, sizeof(attach));
	attach.target_fd = cg;
	attach.attach_bpf_fd = prog;
	attach.attach_type = BPF_CGROUP_INET_SOCK_CREATE;
	attach.attach_flags = BPF_F_ALLOW_MULTI;
	if (sys_bpf(BPF_PROG_ATTACH, &attach) < 0) {
		perror("sockbind: BPF_PROG_ATTACH");
		return 1;
	}
	return 0;
}
