//! How the process keeps its memory small: one heap for every thread, free memory handed
//! back to the system after work that used a lot of it, and file pages it mapped while
//! working let go once it is idle.
//!
//! glibc gives each thread that allocates its own arena and keeps what a thread frees there.
//! A grain's threads come and go (blocking work, the serving loops), and the memory of a
//! search or an import stayed behind in the arena of a thread that had since exited:
//! idle memory varied between 9.6 and 11 MB from one run to the next, 8.6–8.9 MB with one
//! arena (docs/performance.md). Small allocations still come from per-thread caches without
//! a lock; in the tiles benchmark the two serving loops' throughput and p99 with one arena
//! could not be told apart from those with glibc's default (docs/performance.md, Tiles).

/// Makes every thread allocate from the one main heap. Call before starting threads.
pub fn use_one_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator parameter; no memory is touched.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}

/// Hands the heap's free memory back to the system.
pub fn trim_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free pages; live allocations are untouched.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Lets go of the pages of the program's code: the read-only mappings of the binary and its
/// libraries that hold no private copy. They stay in the system's file cache, and the next
/// access maps them back without reading the disk. Resident code follows everything a burst
/// ran (the kernel maps the neighbours of each page touched), while an idle grain runs
/// almost none of it (docs/performance.md, idle memory).
///
/// Only mappings without anonymous (copied-on-write) pages are touched, so nothing written
/// in memory is lost: every page dropped reads back from its file as it was. Only loaded
/// objects' mappings, which stay at their address for the process's life (nothing here
/// unloads a library): a data file's mapping (a tiles archive) could be unmapped by another
/// thread between reading the list and the advice, and its addresses reused by the heap.
pub fn drop_idle_file_pages() {
    #[cfg(target_os = "linux")]
    {
        let Ok(smaps) = std::fs::read_to_string("/proc/self/smaps") else {
            return;
        };
        for (start, end) in clean_code_mappings(&smaps) {
            // SAFETY: the range is a whole mapping of a loaded object's file, not writable,
            // without private pages (checked above): MADV_DONTNEED only unmaps pages that
            // read back from the file unchanged, and the mapping itself stays.
            unsafe {
                libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_DONTNEED);
            }
        }
    }
}

/// One mapping's first line in `/proc/self/smaps`: its range, permissions and file.
fn mapping_header(line: &str) -> Option<((usize, usize), &str, &str)> {
    let mut fields = line.split_whitespace();
    let (from, to) = fields.next()?.split_once('-')?;
    let range = (
        usize::from_str_radix(from, 16).ok()?,
        usize::from_str_radix(to, 16).ok()?,
    );
    let perms = fields.next()?;
    Some((range, perms, fields.nth(3).unwrap_or("")))
}

/// The address ranges, from `/proc/self/smaps`, of the mappings of files that are mapped
/// executable somewhere (the binary, its libraries) that are not writable and hold no
/// anonymous pages.
fn clean_code_mappings(smaps: &str) -> Vec<(usize, usize)> {
    let code_files: Vec<&str> = smaps
        .lines()
        .filter_map(mapping_header)
        .filter(|(_, perms, path)| perms.as_bytes().get(2) == Some(&b'x') && path.starts_with('/'))
        .map(|(_, _, path)| path)
        .collect();
    let mut found = Vec::new();
    let mut current: Option<(usize, usize)> = None;
    for line in smaps.lines() {
        if let Some((range, perms, path)) = mapping_header(line) {
            let read_only = perms.starts_with('r') && perms.as_bytes().get(1) == Some(&b'-');
            current = (read_only && code_files.contains(&path)).then_some(range);
        } else if let Some(anonymous) = line.strip_prefix("Anonymous:")
            && let Some(range) = current.take()
            && anonymous.split_whitespace().next() == Some("0")
        {
            found.push(range);
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_code_mappings_without_private_pages_are_dropped() {
        let smaps = "\
55d0a000-55d0b000 r--p 00000000 08:01 123 /usr/bin/app
Rss:                   4 kB
Anonymous:             0 kB
55d0b000-55d0c000 r-xp 00001000 08:01 123 /usr/bin/app
Anonymous:             0 kB
55d0c000-55d0d000 r--p 00002000 08:01 123 /usr/bin/app
Anonymous:             4 kB
55d0d000-55d0e000 rw-p 00003000 08:01 123 /usr/bin/app
Anonymous:             0 kB
7f000000-7f100000 r--s 00000000 08:01 456 /var/tiles/base-map.pmtiles
Anonymous:             0 kB
7f200000-7f300000 rw-s 00000000 08:01 789 /var/search.db-shm
Anonymous:             0 kB
7f400000-7f500000 rw-p 00000000 00:00 0 
Anonymous:            64 kB
7ffc0000-7ffc1000 r-xp 00000000 00:00 0                  [vdso]
Anonymous:             0 kB
";
        assert_eq!(
            clean_code_mappings(smaps),
            vec![(0x55d0a000, 0x55d0b000), (0x55d0b000, 0x55d0c000)]
        );
    }

    /// Resident kB of the mappings that [`drop_idle_file_pages`] lets go of.
    fn clean_file_rss() -> u64 {
        let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
        let clean = clean_code_mappings(&smaps);
        let mut total = 0;
        let mut counting = false;
        for line in smaps.lines() {
            let first = line.split_whitespace().next().unwrap_or("");
            if let Some((from, _)) = first.split_once('-').filter(|_| !first.ends_with(':')) {
                let from = usize::from_str_radix(from, 16).unwrap_or(0);
                counting = clean.iter().any(|(start, _)| *start == from);
            } else if first == "Rss:" && counting {
                total += line
                    .split_whitespace()
                    .nth(1)
                    .unwrap()
                    .parse::<u64>()
                    .unwrap();
            }
        }
        total
    }

    #[test]
    fn mapped_code_leaves_memory_and_still_runs_after() {
        let before = clean_file_rss();
        assert!(before > 0, "the test binary's code is resident");
        drop_idle_file_pages();
        let after = clean_file_rss();
        assert!(after < before, "{after} kB of {before} kB still resident");
        let text: String = (0..3).map(|i| i.to_string()).collect();
        assert_eq!(text, "012");
    }
}
