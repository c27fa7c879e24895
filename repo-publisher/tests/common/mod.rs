//! Generated RPMs for the repodata tests and the publish benchmark: small, distinct packages
//! made with the `rpm` crate's `PackageBuilder` in well under a millisecond each (rpmbuild takes
//! a fraction of a second per package, far too slow for thousands). Each has a few files (one in
//! `/usr/bin`, so primary lists it), a versioned provide, a requirement on the package before it,
//! and a changelog. Shared by `repo-publisher`'s tests, its `publish_bench` example and the
//! SIGKILL test of `cli` (through `#[path]`).

#![allow(dead_code, reason = "each includer uses a part")]

use std::path::{Path, PathBuf};

/// The name of generated package number `i`.
pub fn package_name(i: usize) -> String {
    format!("gen{i:05}")
}

/// Writes package number `i` (`gen00042-1.0-1.noarch.rpm`) into `dir` and returns its path.
pub fn write_rpm(dir: &Path, i: usize) -> PathBuf {
    let name = package_name(i);
    let mut builder = rpm::PackageBuilder::new(
        &name,
        "1.0",
        "MIT",
        "noarch",
        &format!("{name}: a generated package"),
    );
    builder
        .using_config(
            rpm::BuildConfig::default()
                .compression(rpm::CompressionType::None)
                .source_date(1_700_000_000u32),
        )
        .release("1")
        .description(format!(
            "Package {i}, generated for the repodata tests & benchmarks <of ferrocopr>."
        ))
        .url(format!("https://example.org/{name}"))
        .packager("Generator <gen@example.org>")
        .provides(rpm::Dependency::eq(format!("{name}-api"), "1.0-1"))
        .add_changelog_entry(
            "Dev <dev@example.org> - 1.0-1",
            format!("- release {name}"),
            1_700_000_000u32,
        )
        .add_changelog_entry(
            "Dev <dev@example.org> - 0.9-1",
            "- first version",
            1_690_000_000u32,
        );
    if i > 0 {
        builder.requires(rpm::Dependency::greater_eq(
            format!("{}-api", package_name(i - 1)),
            "1.0",
        ));
    }
    builder
        .with_file_contents(
            format!("#!/bin/sh\necho {name}\n"),
            rpm::FileOptions::new(format!("/usr/bin/{name}")).permissions(0o755),
        )
        .expect("add a file")
        .with_file_contents(
            format!("{name} data\n"),
            rpm::FileOptions::new(format!("/usr/share/{name}/data.txt")),
        )
        .expect("add a file")
        .with_file_contents(
            format!("{name} docs\n"),
            rpm::FileOptions::new(format!("/usr/share/doc/{name}/README")),
        )
        .expect("add a file");
    let package = builder.build().expect("build the package");
    let path = dir.join(format!("{name}-1.0-1.noarch.rpm"));
    package.write_file(&path).expect("write the package");
    path
}
