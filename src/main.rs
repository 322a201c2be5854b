//! The `bootherd` binary. Invoked as `nodels`, `tabdump`, … (a symlink or hard link) it acts as that
//! command; `bootherd nodels …` works too.

fn main() -> std::process::ExitCode {
    bootherd::cli::main()
}
