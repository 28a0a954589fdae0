//! `vrfexec --generate KIND`: man pages (clap_mangen) and shell completions (clap_complete)
//! from the same clap definitions as --help, so they cannot drift apart. `cargo xtask install`
//! writes them where man, bash, zsh and fish look.
use clap::CommandFactory as _;
use clap_complete::Shell;

use crate::{
    cli::Cli,
    error::{Error, Result},
};

pub const KINDS: &str = "man, man-<verb>, complete-bash, complete-zsh or complete-fish";

pub fn generate(kind: &str) -> Result<Vec<u8>> {
    let mut command = Cli::command();
    command.build();
    let mut out = Vec::new();
    let shell = match kind {
        "complete-bash" => Some(Shell::Bash),
        "complete-zsh" => Some(Shell::Zsh),
        "complete-fish" => Some(Shell::Fish),
        _ => None,
    };
    if let Some(shell) = shell {
        clap_complete::generate(shell, &mut command, "vrfexec", &mut out);
        return Ok(out);
    }
    let (page, usage) = match kind {
        "man" => (command, Some(crate::cli::USAGE)),
        _ => {
            let verb = kind.strip_prefix("man-").unwrap_or_default();
            let sub = command
                .find_subcommand(verb)
                .filter(|_| !verb.is_empty())
                .cloned()
                .ok_or_else(|| {
                    Error::Usage(format!(
                        "unknown --generate kind '{kind}': expected {KINDS}"
                    ))
                })?;
            // clap wants 'static names; a handful of bytes per generated page is fine.
            let name: &'static str = Box::leak(format!("vrfexec-{verb}").into_boxed_str());
            let usage = (verb == "exec").then_some(crate::cli::USAGE);
            (sub.name(name).bin_name(name), usage)
        }
    };
    render_man(page, usage, &mut out).map_err(|e| Error::os("cannot render the man page", e))?;
    Ok(out)
}

/// clap_mangen's page, with two changes: the SYNOPSIS shows vrfexec's real forms (clap's
/// generated one cannot express the short form), and the help's closing text (notes, examples,
/// exit status) is set without filling so its columns stay aligned.
fn render_man(page: clap::Command, usage: Option<&str>, out: &mut Vec<u8>) -> std::io::Result<()> {
    let extra = page.get_after_help().map(|t| t.to_string());
    let has_version = page.get_version().is_some();
    let man = clap_mangen::Man::new(page);
    man.render_title(out)?;
    man.render_name_section(out)?;
    match usage {
        Some(usage) => {
            out.extend_from_slice(b".SH SYNOPSIS\n");
            for line in usage.lines() {
                out.extend_from_slice(format!("{}\n.br\n", roff_escape(line.trim())).as_bytes());
            }
        }
        None => man.render_synopsis_section(out)?,
    }
    man.render_description_section(out)?;
    man.render_options_section(out)?;
    man.render_subcommands_section(out)?;
    if let Some(extra) = extra {
        out.extend_from_slice(b".SH NOTES\n.nf\n");
        for line in extra.lines() {
            out.extend_from_slice(format!("{}\n", roff_escape(line)).as_bytes());
        }
        out.extend_from_slice(b".fi\n");
    }
    if has_version {
        man.render_version_section(out)?;
    }
    Ok(())
}

/// Escapes text for roff: backslashes and hyphens, and a leading '.' or '\''.
fn roff_escape(line: &str) -> String {
    let escaped = line.replace('\\', "\\e").replace('-', "\\-");
    if escaped.starts_with('.') || escaped.starts_with('\'') {
        format!("\\&{escaped}")
    } else {
        escaped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn man_pages_and_completions_render() {
        let man = String::from_utf8(generate("man").expect("man")).expect("utf8");
        assert!(
            man.starts_with(".ie") || man.contains(".TH vrfexec"),
            "{}",
            &man[..80.min(man.len())]
        );
        for needle in ["\\-\\-dev", "125", "identify"] {
            assert!(man.contains(needle), "man lacks {needle}");
        }
        let show = String::from_utf8(generate("man-show").expect("man-show")).expect("utf8");
        assert!(show.contains("vrfexec\\-show") && show.contains("\\-\\-json"));
        let bash = String::from_utf8(generate("complete-bash").expect("bash")).expect("utf8");
        assert!(bash.contains("complete -F") && bash.contains("identify"));
        assert!(generate("fish-please").is_err());
        assert!(generate("man-").is_err());
        assert_eq!(roff_escape(".x -y \\z"), "\\&.x \\-y \\ez");
    }
}
