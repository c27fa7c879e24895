//! One test per feature of `.copr.yaml` and per error a packager can make.

use super::*;

const MINIMAL: &str = "chroots: [fedora-41-x86_64]\nspec: hello.spec\n";

fn instance() -> Vec<String> {
    [
        "fedora-41-x86_64",
        "fedora-41-aarch64",
        "fedora-42-x86_64",
        "fedora-rawhide-x86_64",
        "epel-9-x86_64",
        "epel-10-x86_64",
        "centos-stream-9-x86_64",
    ]
    .map(String::from)
    .to_vec()
}

fn event(trigger: Trigger, name: &str) -> Event<'_> {
    Event {
        trigger,
        name,
        default_branch: "main",
    }
}

/// The jobs `text` runs for an event in `alice/hello` on the instance above.
fn jobs(text: &str, trigger: Trigger, name: &str) -> Result<Vec<ResolvedJob>, CoprYamlError> {
    let config = parse(text)?;
    jobs_for(
        &config,
        text,
        &event(trigger, name),
        &repository("alice", "hello", &[]),
        &instance(),
    )
}

/// The repository `owner/name` on github.com, which the projects `allowed` let build in them.
fn repository<'a>(owner: &'a str, name: &'a str, allowed: &'a [ProjectRef]) -> Repository<'a> {
    let forge_project = Box::leak(format!("github.com/{owner}/{name}").into_boxed_str());
    Repository {
        owner,
        name,
        forge_project,
        allowed,
    }
}

fn one_job(text: &str, trigger: Trigger, name: &str) -> ResolvedJob {
    let mut jobs = jobs(text, trigger, name).expect("valid");
    assert_eq!(jobs.len(), 1, "{jobs:#?}");
    jobs.remove(0)
}

fn refused(text: &str) -> CoprYamlError {
    parse(text).expect_err("must be refused")
}

fn position(e: &CoprYamlError) -> (u64, u64) {
    (e.line, e.column)
}

// ---- The file without jobs ----

#[test]
fn minimal_file_resolves_with_every_default() {
    let job = one_job(MINIMAL, Trigger::Push, "main");
    assert_eq!(
        job,
        ResolvedJob {
            trigger: Trigger::Push,
            project: ProjectRef {
                owner: "alice".into(),
                project: "hello".into(),
            },
            chroots: vec!["fedora-41-x86_64".into()],
            spec: "hello.spec".into(),
            srpm: SrpmMethod::Spec,
            enable_net: false,
            timeout: None,
            additional_repos: vec![],
            additional_packages: vec![],
            bconds: Bconds::default(),
            success_comment: false,
            cancel_superseded: true,
        }
    );
    assert_eq!(job.dirname(None), "hello");
    assert_eq!(job.dirname(Some(7)), "hello:pr:7");
}

#[test]
fn top_level_keys_stay_readable() {
    let c = parse("owner: alice\nproject: hello\nchroots: [fedora-41-x86_64]\nspec: hello.spec\n")
        .expect("valid");
    assert_eq!(c.owner.as_ref().map(|o| o.value.as_str()), Some("alice"));
    assert_eq!(
        c.spec.as_ref().map(|s| s.value.as_str()),
        Some("hello.spec")
    );
    let chroots: Vec<&str> = c
        .chroots
        .iter()
        .flat_map(|c| &c.value)
        .map(|c| c.value.as_str())
        .collect();
    assert_eq!(chroots, ["fedora-41-x86_64"]);
}

#[test]
fn without_jobs_pushes_build_only_the_default_branch() {
    assert_eq!(
        jobs(MINIMAL, Trigger::Push, "main").expect("valid").len(),
        1
    );
    assert_eq!(jobs(MINIMAL, Trigger::Push, "topic").expect("valid"), []);
}

#[test]
fn without_jobs_every_pull_request_builds() {
    let job = one_job(MINIMAL, Trigger::PullRequest, "stable-1");
    assert_eq!(job.trigger, Trigger::PullRequest);
    assert_eq!(job.dirname(Some(12)), "hello:pr:12");
}

#[test]
fn without_jobs_tags_do_not_build() {
    assert_eq!(jobs(MINIMAL, Trigger::Tag, "v1.0").expect("valid"), []);
}

#[test]
fn missing_spec_or_chroots_without_jobs_is_reported() {
    let e = refused("chroots: [fedora-41-x86_64]\n");
    assert_eq!(
        e.to_string(),
        ".copr.yaml:1:1: missing key `spec`: set it, such as `spec: hello.spec`"
    );
    let e = refused("spec: hello.spec\n");
    assert!(e.message.contains("missing key `chroots`"), "{e}");
}

// ---- Unknown keys and bad values ----

#[test]
fn unknown_top_level_key_names_line_column_and_hint() {
    let e = refused("chroots: [fedora-41-x86_64]\nspec: hello.spec\nprojetc: x\n");
    assert_eq!(position(&e), (3, 1), "{e}");
    let text = e.to_string();
    assert!(
        text.starts_with(".copr.yaml:3:1: unknown key `projetc` (did you mean `project`?)"),
        "{text}"
    );
}

#[test]
fn unknown_job_key_names_line_column_and_hint() {
    let e = refused(&format!(
        "{MINIMAL}jobs:\n  - trigger: push\n    brnaches: [main]\n"
    ));
    assert_eq!(position(&e), (5, 5), "{e}");
    assert!(
        e.message
            .starts_with("unknown key `brnaches` (did you mean `branches`?)"),
        "{e}"
    );
}

#[test]
fn unknown_srpm_key_names_line_column_and_hint() {
    let e = refused(&format!("{MINIMAL}srpm:\n  metod: make_srpm\n"));
    assert_eq!(position(&e), (4, 3), "{e}");
    assert!(e.message.contains("did you mean `method`?"), "{e}");
}

#[test]
fn unknown_notifications_key_names_line_column_and_hint() {
    let e = refused(&format!(
        "{MINIMAL}notifications:\n  success_coment: true\n"
    ));
    assert_eq!(position(&e), (4, 3), "{e}");
    assert!(e.message.contains("did you mean `success_comment`?"), "{e}");
}

#[test]
fn bad_trigger_value_names_line_column_and_hint() {
    let e = refused(&format!("{MINIMAL}jobs:\n  - trigger: pull-request\n"));
    assert_eq!(e.line, 4, "{e}");
    assert!(
        e.message
            .starts_with("unknown value `pull-request` (did you mean `pull_request`?)"),
        "{e}"
    );
    assert!(e.message.contains("push, pull_request, tag"), "{e}");
}

#[test]
fn job_without_trigger_is_refused() {
    let e = refused(&format!("{MINIMAL}jobs:\n  - branches: [main]\n"));
    assert_eq!(e.line, 4, "{e}");
    assert!(e.message.contains("missing key `trigger`"), "{e}");
}

#[test]
fn type_error_names_line_and_column() {
    let e = refused("chroots: fedora\nspec: hello.spec\n");
    assert_eq!(e.line, 1, "{e}");
    assert!(e.to_string().starts_with(".copr.yaml:1:"), "{e}");
}

#[test]
fn type_errors_say_what_was_expected() {
    let e = refused(&format!("{MINIMAL}enable_net: maybe\n"));
    assert_eq!(e.to_string(), ".copr.yaml:3:13: expected `true` or `false`");
    let e = refused(&format!("{MINIMAL}srpm: make_srpm\n"));
    assert_eq!(
        e.to_string(),
        ".copr.yaml:3:7: expected a mapping of keys to values, such as `key: value`"
    );
    let e = refused(&format!("{MINIMAL}spec: b.spec\n"));
    assert_eq!(
        e.to_string(),
        ".copr.yaml:3:1: `spec` is set twice; keep one"
    );
}

#[test]
fn yaml_merge_keys_work_in_jobs() {
    let text = format!(
        "{MINIMAL}jobs:\n  - &push\n    trigger: push\n    enable_net: true\n  - <<: *push\n    branches: [stable]\n"
    );
    assert!(one_job(&text, Trigger::Push, "stable").enable_net);
}

#[test]
fn bad_chroot_name_is_refused_at_the_entry() {
    let e = refused("chroots: [fedora-41-x86_64, fedora]\nspec: a.spec\n");
    assert_eq!(
        e.to_string(),
        ".copr.yaml:1:29: `fedora` is neither a chroot like `fedora-41-x86_64` nor an alias \
         like `fedora-all`"
    );
}

#[test]
fn duplicate_chroot_empty_chroots_and_outside_spec_are_refused() {
    let e = refused("chroots:\n  - fedora-41-x86_64\n  - fedora-41-x86_64\nspec: a.spec\n");
    assert_eq!(position(&e), (3, 5), "{e}");
    assert!(e.message.contains("listed twice"), "{e}");
    let e = refused("chroots: []\nspec: a.spec\n");
    assert_eq!(e.line, 1, "{e}");
    assert!(e.message.contains("lists no chroot"), "{e}");
    for spec in ["/etc/passwd", "../x.spec", "a/../../x.spec", "''"] {
        let e = refused(&format!("chroots: [fedora-41-x86_64]\nspec: {spec}\n"));
        assert_eq!(position(&e), (2, 7), "{spec}: {e}");
    }
}

#[test]
fn owner_and_project_must_be_names() {
    let e = refused(&format!("{MINIMAL}project: my project\n"));
    assert_eq!(position(&e), (3, 10), "{e}");
    assert!(e.message.contains("may hold only letters"), "{e}");
}

// ---- jobs ----

const JOBS: &str = "\
chroots: [fedora-41-x86_64]
spec: hello.spec
jobs:
  - trigger: push
    branches: [main, release-*]
  - trigger: pull_request
    branches: [main]
  - trigger: tag
    branches: ['v[0-9]*']
    project: hello-releases
";

#[test]
fn branch_names_match_whole_names_never_prefixes() {
    assert_eq!(jobs(JOBS, Trigger::Push, "main").expect("valid").len(), 1);
    assert_eq!(jobs(JOBS, Trigger::Push, "main-old").expect("valid"), []);
    assert_eq!(jobs(JOBS, Trigger::Push, "old-main").expect("valid"), []);
}

#[test]
fn branch_globs_match_whole_names() {
    assert_eq!(
        jobs(JOBS, Trigger::Push, "release-1.0")
            .expect("valid")
            .len(),
        1
    );
    assert_eq!(
        jobs(JOBS, Trigger::Push, "prerelease-1.0").expect("valid"),
        []
    );
    assert_eq!(jobs(JOBS, Trigger::Push, "release").expect("valid"), []);
}

#[test]
fn pull_request_branches_filter_the_target_branch() {
    assert_eq!(
        one_job(JOBS, Trigger::PullRequest, "main").trigger,
        Trigger::PullRequest
    );
    assert_eq!(
        jobs(JOBS, Trigger::PullRequest, "release-1.0").expect("valid"),
        []
    );
}

#[test]
fn tag_jobs_filter_tag_names() {
    let job = one_job(JOBS, Trigger::Tag, "v1.0");
    assert_eq!(job.project.project, "hello-releases");
    assert_eq!(jobs(JOBS, Trigger::Tag, "latest").expect("valid"), []);
}

#[test]
fn jobs_without_branches_take_the_trigger_default() {
    let text =
        format!("{MINIMAL}jobs:\n  - trigger: push\n  - trigger: pull_request\n  - trigger: tag\n");
    assert_eq!(jobs(&text, Trigger::Push, "main").expect("valid").len(), 1);
    assert_eq!(jobs(&text, Trigger::Push, "topic").expect("valid"), []);
    assert_eq!(
        jobs(&text, Trigger::PullRequest, "anything")
            .expect("valid")
            .len(),
        1
    );
    assert_eq!(
        jobs(&text, Trigger::Tag, "anything").expect("valid").len(),
        1
    );
}

#[test]
fn explicit_jobs_replace_the_default_jobs() {
    let text = format!("{MINIMAL}jobs:\n  - trigger: tag\n");
    assert_eq!(jobs(&text, Trigger::Push, "main").expect("valid"), []);
    assert_eq!(
        jobs(&text, Trigger::PullRequest, "main").expect("valid"),
        []
    );
}

#[test]
fn several_matching_jobs_all_run_in_file_order() {
    let text = format!(
        "{MINIMAL}jobs:\n  - trigger: push\n  - trigger: push\n    project: hello-nightly\n"
    );
    let projects: Vec<String> = jobs(&text, Trigger::Push, "main")
        .expect("valid")
        .into_iter()
        .map(|j| j.project.project)
        .collect();
    assert_eq!(projects, ["hello", "hello-nightly"]);
}

#[test]
fn jobs_inherit_the_top_level_and_override_it() {
    let text = "\
owner: alice
project: hello
chroots: [fedora-41-x86_64]
spec: hello.spec
srpm:
  method: make_srpm
enable_net: true
timeout: 7200
additional_repos: [https://example.org/repo/]
additional_packages: [gcc-c++]
with_opts: [tests]
notifications:
  success_comment: true
cancel_superseded: false
jobs:
  - trigger: push
  - trigger: pull_request
    project: hello-ci
    chroots: [epel-9-x86_64]
    spec: rpm/hello.spec
    srpm:
      method: custom
      script: ./make-srpm.sh \"$COPR_RESULTDIR\"
    enable_net: false
    timeout: 600
    additional_repos: []
    additional_packages: ['pkgconfig(glib-2.0)']
    with_opts: []
    without_opts: [docs]
    notifications:
      success_comment: false
    cancel_superseded: true
";
    let inherited = one_job(text, Trigger::Push, "main");
    assert_eq!(
        inherited,
        ResolvedJob {
            trigger: Trigger::Push,
            project: ProjectRef {
                owner: "alice".into(),
                project: "hello".into(),
            },
            chroots: vec!["fedora-41-x86_64".into()],
            spec: "hello.spec".into(),
            srpm: SrpmMethod::MakeSrpm,
            enable_net: true,
            timeout: Some(7200),
            additional_repos: vec!["https://example.org/repo/".into()],
            additional_packages: vec!["gcc-c++".into()],
            bconds: Bconds {
                with: vec!["tests".into()],
                without: vec![],
            },
            success_comment: true,
            cancel_superseded: false,
        }
    );
    let overridden = one_job(text, Trigger::PullRequest, "main");
    assert_eq!(
        overridden,
        ResolvedJob {
            trigger: Trigger::PullRequest,
            project: ProjectRef {
                owner: "alice".into(),
                project: "hello-ci".into(),
            },
            chroots: vec!["epel-9-x86_64".into()],
            spec: "rpm/hello.spec".into(),
            srpm: SrpmMethod::Custom {
                script: "./make-srpm.sh \"$COPR_RESULTDIR\"".into()
            },
            enable_net: false,
            timeout: Some(600),
            additional_repos: vec![],
            additional_packages: vec!["pkgconfig(glib-2.0)".into()],
            bconds: Bconds {
                with: vec![],
                without: vec!["docs".into()],
            },
            success_comment: false,
            cancel_superseded: true,
        }
    );
}

#[test]
fn a_job_may_supply_what_the_top_level_lacks() {
    let text = "jobs:\n  - trigger: push\n    spec: a.spec\n    chroots: [fedora-all]\n";
    assert_eq!(one_job(text, Trigger::Push, "main").spec, "a.spec");
}

#[test]
fn a_job_without_spec_is_refused_at_the_job() {
    let e = refused(
        "chroots: [fedora-all]\njobs:\n  - trigger: push\n    spec: a.spec\n  - trigger: tag\n",
    );
    assert_eq!(position(&e), (5, 5), "{e}");
    assert!(e.message.contains("this `tag` job has no `spec`"), "{e}");
}

#[test]
fn empty_jobs_and_empty_branches_are_refused() {
    let e = refused(&format!("{MINIMAL}jobs: []\n"));
    assert_eq!(e.line, 3, "{e}");
    assert!(e.message.contains("lists no job"), "{e}");
    let e = refused(&format!(
        "{MINIMAL}jobs:\n  - trigger: push\n    branches: []\n"
    ));
    assert_eq!(e.line, 5, "{e}");
    assert!(e.message.contains("would never run"), "{e}");
}

#[test]
fn bad_branch_glob_is_refused_at_the_entry() {
    let e = refused(&format!(
        "{MINIMAL}jobs:\n  - trigger: push\n    branches: [main, 'release-[0-9']\n"
    ));
    assert_eq!(position(&e), (5, 22), "{e}");
    assert!(e.message.contains("never closed"), "{e}");
}

// ---- chroots ----

#[test]
fn chroot_aliases_expand_against_the_instance() {
    let text = "chroots: [fedora-stable, epel-all, fedora-41-x86_64, centos-stream-all, fedora-rawhide]\nspec: a.spec\n";
    assert_eq!(
        one_job(text, Trigger::Push, "main").chroots,
        [
            "fedora-41-x86_64",
            "fedora-41-aarch64",
            "fedora-42-x86_64",
            "epel-9-x86_64",
            "epel-10-x86_64",
            "centos-stream-9-x86_64",
            "fedora-rawhide-x86_64",
        ]
    );
    let text = "chroots: [fedora-all]\nspec: a.spec\n";
    assert_eq!(one_job(text, Trigger::Push, "main").chroots.len(), 4);
}

#[test]
fn unknown_chroot_is_refused_at_the_entry_with_the_available_list() {
    let text = "chroots:\n  - fedora-41-x86_64\n  - fedora-99-x86_64\nspec: a.spec\n";
    let e = jobs(text, Trigger::Push, "main").expect_err("must be refused");
    assert_eq!(position(&e), (3, 5), "{e}");
    assert_eq!(
        e.message,
        format!(
            "`fedora-99-x86_64` matches no chroot of this instance; available: {}",
            instance().join(", ")
        )
    );
}

#[test]
fn alias_matching_nothing_is_refused_at_the_entry() {
    let text = "chroots: [fedora-all, mageia-all]\nspec: a.spec\n";
    let e = jobs(text, Trigger::Push, "main").expect_err("must be refused");
    assert_eq!(position(&e), (1, 23), "{e}");
    assert!(
        e.message.starts_with("`mageia-all` matches no chroot"),
        "{e}"
    );
}

#[test]
fn chroots_of_jobs_that_do_not_run_are_checked_by_resolve_all() {
    let text =
        format!("{MINIMAL}jobs:\n  - trigger: push\n  - trigger: tag\n    chroots: [mageia-all]\n");
    let config = parse(&text).expect("valid");
    assert_eq!(jobs(&text, Trigger::Push, "main").expect("valid").len(), 1);
    let e = resolve_all(
        &config,
        &text,
        &repository("alice", "hello", &[]),
        &instance(),
    )
    .expect_err("refused");
    assert_eq!(position(&e), (6, 15), "{e}");
}

// ---- srpm ----

#[test]
fn srpm_methods_resolve() {
    let text = format!("{MINIMAL}srpm:\n  method: make_srpm\n");
    assert_eq!(
        one_job(&text, Trigger::Push, "main").srpm,
        SrpmMethod::MakeSrpm
    );
    let text = format!("{MINIMAL}srpm:\n  method: spec\n");
    assert_eq!(one_job(&text, Trigger::Push, "main").srpm, SrpmMethod::Spec);
    let text = format!(
        "{MINIMAL}srpm:\n  method: custom\n  script: |\n    spectool -g hello.spec\n    cp hello.spec *.tar.gz \"$COPR_RESULTDIR\"\n"
    );
    assert_eq!(
        one_job(&text, Trigger::Push, "main").srpm,
        SrpmMethod::Custom {
            script: "spectool -g hello.spec\ncp hello.spec *.tar.gz \"$COPR_RESULTDIR\"\n".into()
        }
    );
}

#[test]
fn custom_without_script_is_refused() {
    let e = refused(&format!("{MINIMAL}srpm:\n  method: custom\n"));
    assert_eq!(position(&e), (4, 11), "{e}");
    assert!(
        e.message.starts_with("`method: custom` needs `script:`"),
        "{e}"
    );
    let e = refused(&format!(
        "{MINIMAL}srpm:\n  method: custom\n  script: ' '\n"
    ));
    assert_eq!(e.line, 5, "{e}");
}

#[test]
fn script_with_another_method_is_refused() {
    let e = refused(&format!(
        "{MINIMAL}srpm:\n  method: make_srpm\n  script: make srpm\n"
    ));
    assert_eq!(position(&e), (5, 11), "{e}");
    assert!(
        e.message
            .starts_with("`script` is only for `method: custom`, not `make_srpm`"),
        "{e}"
    );
}

#[test]
fn unknown_srpm_method_has_a_hint() {
    let e = refused(&format!("{MINIMAL}srpm:\n  method: make-srpm\n"));
    assert_eq!(e.line, 4, "{e}");
    assert!(e.message.contains("did you mean `make_srpm`?"), "{e}");
}

// ---- the other keys ----

#[test]
fn enable_net_and_timeout_resolve() {
    let text = format!("{MINIMAL}enable_net: true\ntimeout: 3600\n");
    let job = one_job(&text, Trigger::Push, "main");
    assert!(job.enable_net);
    assert_eq!(job.timeout, Some(3600));
}

#[test]
fn timeout_out_of_bounds_is_refused() {
    for timeout in [0, 59, 86401] {
        let e = refused(&format!("{MINIMAL}timeout: {timeout}\n"));
        assert_eq!(position(&e), (3, 10), "{e}");
        assert!(e.message.contains("from 60 to 86400"), "{e}");
    }
    assert!(parse(&format!("{MINIMAL}timeout: 60\n")).is_ok());
    assert!(parse(&format!("{MINIMAL}timeout: 86400\n")).is_ok());
    let e = refused(&format!("{MINIMAL}timeout: -5\n"));
    assert_eq!(e.line, 3, "{e}");
}

#[test]
fn additional_repos_must_be_urls() {
    let e = refused(&format!(
        "{MINIMAL}additional_repos:\n  - https://example.org/a/\n  - example.org/b\n"
    ));
    assert_eq!(position(&e), (5, 5), "{e}");
    assert!(e.message.contains("not a repository URL"), "{e}");
}

#[test]
fn additional_packages_must_be_package_names() {
    let text =
        format!("{MINIMAL}additional_packages: [gcc-c++, 'perl(Test::More)', /usr/bin/python3]\n");
    assert_eq!(
        one_job(&text, Trigger::Push, "main")
            .additional_packages
            .len(),
        3
    );
    let e = refused(&format!(
        "{MINIMAL}additional_packages: [gcc, '--nogpgcheck']\n"
    ));
    assert_eq!(position(&e), (3, 28), "{e}");
    let e = refused(&format!("{MINIMAL}additional_packages: ['gcc make']\n"));
    assert!(e.message.contains("not a package name"), "{e}");
}

#[test]
fn success_comment_is_opt_in() {
    assert!(!one_job(MINIMAL, Trigger::PullRequest, "main").success_comment);
    let text = format!("{MINIMAL}notifications:\n  success_comment: true\n");
    assert!(one_job(&text, Trigger::PullRequest, "main").success_comment);
    // An empty mapping in a job overrides nothing.
    let text = format!(
        "{MINIMAL}notifications:\n  success_comment: true\njobs:\n  - trigger: pull_request\n    notifications: {{}}\n"
    );
    assert!(one_job(&text, Trigger::PullRequest, "main").success_comment);
}

#[test]
fn cancel_superseded_is_on_by_default() {
    assert!(one_job(MINIMAL, Trigger::PullRequest, "main").cancel_superseded);
    let text = format!("{MINIMAL}cancel_superseded: false\n");
    assert!(!one_job(&text, Trigger::PullRequest, "main").cancel_superseded);
}

// ---- the owner ----

#[test]
fn project_is_bound_to_the_repository_owner() {
    let text = "chroots: [fedora-41-x86_64]\nspec: a.spec\nowner: bob\n";
    let config = parse(text).expect("valid");
    let e = project_for_repo(&config, text, &repository("mallory", "x", &[]))
        .expect_err("must be refused");
    assert_eq!(position(&e), (3, 8), "{e}");
    assert!(e.message.contains("may go only to `mallory`"), "{e}");
    assert!(
        e.message
            .contains("copr-cli modify bob/x --packit-forge-project-allowed github.com/mallory/x"),
        "the fix is named: {e}"
    );
    let own = project_for_repo(&config, text, &repository("Bob", "tool", &[])).expect("own owner");
    assert_eq!(
        (own.owner.as_str(), own.project.as_str()),
        ("Bob", "tool"),
        "the forge's spelling"
    );
    let config = parse(MINIMAL).expect("valid");
    let e = project_for_repo(&config, MINIMAL, &repository("alice", "..", &[]))
        .expect_err("must be refused");
    assert!(e.message.contains("set `project:`"), "{e}");
}

#[test]
fn another_owner_takes_builds_when_its_project_allows_the_repository() {
    let text = "chroots: [fedora-41-x86_64]\nspec: a.spec\nowner: \"@devs\"\nproject: tools\n";
    let config = parse(text).expect("valid");
    let tools = ProjectRef {
        owner: "@devs".into(),
        project: "tools".into(),
    };
    let other = ProjectRef {
        owner: "@devs".into(),
        project: "other".into(),
    };
    let allowed = [other.clone(), tools.clone()];
    let chosen =
        project_for_repo(&config, text, &repository("alice", "hello", &allowed)).expect("allowed");
    assert_eq!(chosen, tools);
    let e = project_for_repo(&config, text, &repository("alice", "hello", &[other]))
        .expect_err("another project of the owner does not allow it");
    assert_eq!(position(&e), (3, 8), "{e}");
    assert!(
        e.message
            .contains("`@devs/tools` does not allow builds from `github.com/alice/hello`"),
        "{e}"
    );
}

#[test]
fn a_job_cannot_build_into_another_owner() {
    let text = format!("{MINIMAL}jobs:\n  - trigger: push\n    owner: bob\n");
    let e = jobs(&text, Trigger::Push, "main").expect_err("must be refused");
    assert_eq!(position(&e), (5, 12), "{e}");
    assert!(e.message.contains("may go only to `alice`"), "{e}");
}

// ---- what the bot stores ----

#[test]
fn srpm_method_and_trigger_serialize_as_in_the_file() {
    fn json<T: Serialize>(value: &T) -> String {
        serde_json::to_string(value).expect("serializable")
    }
    assert_eq!(json(&SrpmMethod::Spec), r#"{"method":"spec"}"#);
    assert_eq!(json(&SrpmMethod::MakeSrpm), r#"{"method":"make_srpm"}"#);
    assert_eq!(
        json(&SrpmMethod::Custom {
            script: "make".into()
        }),
        r#"{"method":"custom","script":"make"}"#
    );
    assert_eq!(json(&Trigger::PullRequest), r#""pull_request""#);
    let back: SrpmMethod =
        serde_json::from_str(r#"{"method":"custom","script":"make"}"#).expect("round trip");
    assert_eq!(
        back,
        SrpmMethod::Custom {
            script: "make".into()
        }
    );
}
