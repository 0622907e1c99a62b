//! BENCHMARKS.md is written by several benches, each owning its `## ` sections: a bench
//! replaces its own and keeps everyone else's.

/// `2026-12-07 09:00 UTC`.
pub fn now_utc() -> String {
    let t = time::OffsetDateTime::now_utc();
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02} UTC",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute()
    )
}

/// CPU model, machine kind, cores, memory and kernel, one line.
pub fn machine() -> String {
    let m = super::Machine::this();
    format!(
        "{} ({}), {} cores, {} MiB RAM, {}",
        m.cpu, m.kind, m.cores, m.memory_mib, m.os
    )
}

/// `text` with the section under `heading` replaced by `section` (or added at the end): the
/// section runs from its heading to the next `## ` heading.
pub fn splice(text: &str, heading: &str, section: &str) -> String {
    let Some(start) = text.match_indices(heading).map(|(i, _)| i).find(|&i| {
        (i == 0 || text[..i].ends_with('\n')) && text[i + heading.len()..].starts_with('\n')
    }) else {
        let mut out = text.trim_end().to_owned();
        if !out.is_empty() {
            out.push_str("\n\n");
        }
        out.push_str(section.trim_end());
        out.push('\n');
        return out;
    };
    let after = start + heading.len();
    let end = text[after..]
        .match_indices("\n## ")
        .next()
        .map_or(text.len(), |(i, _)| after + i + 1);
    let mut out = text[..start].to_owned();
    out.push_str(section.trim_end());
    out.push('\n');
    if end < text.len() {
        out.push('\n');
        out.push_str(&text[end..]);
    }
    out
}

/// `new` (a whole report) followed by every `## ` section of `old` that neither `new` has nor
/// `owned` names (the sections the writer of `new` may leave out of a run): the ingest report is
/// written whole, and must not drop the sections other benches own (the fleet's, reply
/// extraction) or notes added by hand.
pub fn keep_other_sections(old: &str, new: &str, owned: &[&str]) -> String {
    let headings: Vec<&str> = new.lines().filter(|l| l.starts_with("## ")).collect();
    let mut out = new.trim_end().to_owned();
    let mut starts: Vec<usize> = old.match_indices("\n## ").map(|(i, _)| i + 1).collect();
    if old.starts_with("## ") {
        starts.insert(0, 0);
    }
    for (n, &start) in starts.iter().enumerate() {
        let end = starts.get(n + 1).copied().unwrap_or(old.len());
        let part = &old[start..end];
        let heading = part.lines().next().unwrap_or("");
        if !headings.contains(&heading) && !owned.contains(&heading) {
            out.push_str("\n\n");
            out.push_str(part.trim_end());
        }
    }
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_section_replaces_itself_and_the_ingest_report_keeps_it() {
        let doc = "# Benchmarks\n\n## Ingest job\n\nx\n\n## Fleet under limits\n\nf\n";
        let once = splice(doc, "## Reply extraction", "## Reply extraction\n\nfirst\n");
        assert!(once.ends_with("## Reply extraction\n\nfirst\n"));
        let twice = splice(
            &once,
            "## Reply extraction",
            "## Reply extraction\n\nsecond\n",
        );
        assert_eq!(twice, once.replace("first", "second"));
        let rewritten = keep_other_sections(
            &format!("{twice}\n## Notes\n\nold notes\n"),
            "# Benchmarks\n\n## Ingest job\n\ny\n",
            &["## Notes"],
        );
        assert_eq!(
            rewritten,
            format!(
                "# Benchmarks\n\n## Ingest job\n\ny\n\n## Fleet under limits\n\nf\n\n## Reply extraction\n\nsecond\n"
            )
        );
    }
}
