//! `tessera-bench flamegraph`: a flame graph (SVG) of a profile recorded
//! with call stacks (`perf record --call-graph dwarf`), read from `perf
//! script`'s text, through inferno (stacks folded as `stackcollapse-perf.pl`
//! folds them, plotted as `flamegraph.pl` plots them).
//!
//! `scripts/profile.sh` makes one for each target tessera misses; where the
//! flat profiles of BENCHMARKS.md say which functions cost, these show who
//! called them (axum's, tower's and tessera's futures, hyper's connection
//! task, criterion's loop).
//!
//! ```text
//! perf record -e cpu-clock --call-graph dwarf -F 499 -o stacks.perf -- PROGRAM
//! perf script --no-inline -i stacks.perf > stacks.txt
//! tessera-bench flamegraph --title "decode/100B" stacks.txt decode.svg
//! ```

use std::fs::File;
use std::io::{BufReader, BufWriter, Write as _};
use std::path::{Path, PathBuf};

use clap::Args;
use inferno::collapse::perf::{Folder, Options as FoldOptions};
use inferno::collapse::Collapse as _;
use inferno::flamegraph::{self, Options as PlotOptions};

/// `tessera-bench flamegraph`'s arguments.
#[derive(Debug, Args)]
pub struct FlamegraphArgs {
    /// The graph's title.
    #[arg(long)]
    pub title: String,
    /// A line under the title (what was run, where, when).
    #[arg(long)]
    pub subtitle: Option<String>,
    /// Frames narrower than this many pixels are left out, which keeps the
    /// SVG small; 0 keeps every frame.
    #[arg(long, default_value_t = 0.5)]
    pub min_width: f64,
    /// `perf script`'s output for a profile recorded with call stacks.
    pub input: PathBuf,
    /// Where the SVG goes.
    pub output: PathBuf,
}

/// What stops a flame graph from being drawn.
#[derive(Debug, thiserror::Error)]
pub enum FlamegraphError {
    #[error("cannot read {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write {}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{} holds no call stacks: was the profile recorded with `--call-graph`, \
         and is it `perf script`'s output?",
        path.display()
    )]
    NoStacks { path: PathBuf },
}

/// Folds `args.input`'s stacks and plots them into `args.output`.
pub fn run(args: &FlamegraphArgs) -> Result<(), FlamegraphError> {
    let folded = fold(&args.input)?;
    if folded.trim().is_empty() {
        return Err(FlamegraphError::NoStacks {
            path: args.input.clone(),
        });
    }
    let mut options = PlotOptions::default();
    options.title = args.title.clone();
    options.subtitle = args.subtitle.clone();
    options.min_width = args.min_width;
    // Colours from the functions' names, the same on every run, so that
    // two graphs of the same code compare by eye and diff quietly.
    options.deterministic = true;
    // Each sample weighs its period: nanoseconds for `cpu-clock`, the event
    // scripts/profile.sh records.
    options.count_name = "ns".to_owned();
    let write_error = |source| FlamegraphError::Write {
        path: args.output.clone(),
        source,
    };
    let mut out = BufWriter::new(File::create(&args.output).map_err(write_error)?);
    flamegraph::from_lines(&mut options, folded.lines(), &mut out).map_err(write_error)?;
    out.flush().map_err(write_error)
}

/// One line per distinct stack, `frame;frame;... weight`, the weight being
/// the sum of the samples' periods.
fn fold(input: &Path) -> Result<String, FlamegraphError> {
    let read_error = |source| FlamegraphError::Read {
        path: input.to_owned(),
        source,
    };
    let reader = BufReader::new(File::open(input).map_err(read_error)?);
    let mut folded = Vec::new();
    Folder::from(FoldOptions::default())
        .collapse(reader, &mut folded)
        .map_err(read_error)?;
    String::from_utf8(folded).map_err(|error| {
        read_error(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            error.utf8_error(),
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two samples of `perf script`'s text, as perf 6 prints them.
    const SCRIPT: &str = "\
bench-server 4242 [000] 100.000001:    1001001 cpu-clock:ppp: 
\t    55d0c0a01234 sha1::compress::x86::digest_blocks+0x34 (/bench-server)
\t    55d0c0a05678 tessera::signing::Signer::verify+0x78 (/bench-server)
\t    55d0c0a09abc tessera::core::SessionCore::open+0xbc (/bench-server)

bench-server 4242 [001] 100.001002:    1001001 cpu-clock:ppp: 
\t    55d0c0a05678 tessera::signing::Signer::verify+0x78 (/bench-server)
\t    55d0c0a09abc tessera::core::SessionCore::open+0xbc (/bench-server)

";

    #[test]
    fn stacks_are_folded_and_plotted() {
        let dir = std::env::temp_dir().join(format!("tessera-flamegraph-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a scratch directory");
        let input = dir.join("stacks.txt");
        std::fs::write(&input, SCRIPT).expect("the script's text");

        let folded = fold(&input).expect("folds");
        let mut lines: Vec<&str> = folded.lines().collect();
        lines.sort_unstable();
        assert_eq!(
            lines,
            [
                "bench-server;tessera::core::SessionCore::open;tessera::signing::Signer::verify 1001001",
                "bench-server;tessera::core::SessionCore::open;tessera::signing::Signer::verify;\
                 sha1::compress::x86::digest_blocks 1001001",
            ]
        );

        let output = dir.join("stacks.svg");
        run(&FlamegraphArgs {
            title: "decode".to_owned(),
            subtitle: Some("two samples".to_owned()),
            min_width: 0.0,
            input: input.clone(),
            output: output.clone(),
        })
        .expect("plots");
        let svg = std::fs::read_to_string(&output).expect("the SVG");
        assert!(svg.starts_with("<?xml"), "{}", &svg[..svg.len().min(200)]);
        assert!(svg.contains("digest_blocks"));
        assert!(svg.contains("two samples"));

        std::fs::write(&input, "not a profile\n").expect("rewrites");
        assert!(matches!(
            run(&FlamegraphArgs {
                title: "nothing".to_owned(),
                subtitle: None,
                min_width: 0.5,
                input,
                output,
            }),
            Err(FlamegraphError::NoStacks { .. })
        ));
        std::fs::remove_dir_all(&dir).ok();
    }
}
