//! Writes the seed corpus of the `request` target into the given directory.

fn main() {
    let dir = std::env::args().nth(1).expect("usage: seeds DIR");
    std::fs::create_dir_all(&dir).expect("the corpus directory");
    for (n, seed) in apiserver::fuzzing::seeds().iter().enumerate() {
        std::fs::write(format!("{dir}/seed-{n:04}"), seed).expect("a seed file");
    }
}
