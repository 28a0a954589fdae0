//! Verbose progress on stderr (`-v`): a leaf every layer may use.

/// Whether `-v` was given; [`Log::step`] prints only then.
#[derive(Debug, Clone, Copy)]
pub struct Log(pub bool);

impl Log {
    pub fn step(&self, message: std::fmt::Arguments<'_>) {
        if self.0 {
            eprintln!("vrfexec: {message}");
        }
    }
}
