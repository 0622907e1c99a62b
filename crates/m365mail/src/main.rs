//! `m365mail`: the mail handler command. Work in progress.

fn main() {
    println!("m365mail: the mail handler is not built yet (see issue 9)");
}
