//! `/copr` comment commands: the text of a PR or MR comment in, typed [`Command`]s out.
//!
//! The event handler calls [`parse_comment`] on every new comment of a pull or merge request,
//! then checks who may run what and acts; this module only reads text and never does I/O. The
//! commands are described once, in [`COMMANDS`], which both the parser and [`help_text`] read,
//! so the help cannot drift from what is accepted.
//!
//! What counts as a command follows what the reader of the rendered comment sees (CommonMark,
//! approximated line by line): a line that starts with `/copr` (after at most three spaces), and
//! that is not inside a fenced or indented code block, a quote (`>`), an HTML comment, or an
//! inline code span that began on an earlier line. So quoting someone's `/copr build` in a reply,
//! or showing one in an example, never starts a build.

use ferrocopr_schema::Chroot;
use std::fmt;
use std::ops::Range;

/// The word every command starts with. Case-sensitive, and followed by whitespace or the end of
/// the line, so `/coprx` or `/Copr` is ordinary text.
pub const PREFIX: &str = "/copr";

/// A command from a PR or MR comment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Build the change again. An empty list means every chroot of the job; otherwise the named
    /// chroots, each once, in the order first written (`/copr build a b a` is `[a, b]`). Only
    /// their shape is checked here: the caller still checks that each belongs to the job.
    Build { chroots: Vec<String> },
    /// Build again the chroots that failed in the change's latest build.
    RebuildFailed,
    /// Cancel the change's running and queued builds.
    Cancel,
    /// Reply with [`help_text`]. Also what `/copr` alone means, as `/packit` alone does in Packit.
    Help,
}

impl Command {
    /// The command word, as written after `/copr`.
    pub fn name(&self) -> &'static str {
        self.spec().name
    }

    /// This command's row of [`COMMANDS`]. The match is exhaustive, so a new variant cannot
    /// compile without a description.
    fn spec(&self) -> &'static Spec {
        match self {
            Command::Build { .. } => &BUILD,
            Command::RebuildFailed => &REBUILD_FAILED,
            Command::Cancel => &CANCEL,
            Command::Help => &HELP,
        }
    }
}

/// The command as a user would write it: `/copr build fedora-41-x86_64`.
impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{PREFIX} {}", self.name())?;
        if let Command::Build { chroots } = self {
            for chroot in chroots {
                write!(f, " {chroot}")?;
            }
        }
        Ok(())
    }
}

/// Why a `/copr …` line is not a command we can run. A user error: it is answered with its
/// [`Display`](fmt::Display) line followed by [`help_text`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandError {
    /// The word after `/copr` names no command.
    Unknown { word: String },
    /// A command got an argument it cannot take; `argument` is the first such one.
    BadArgument {
        command: &'static str,
        argument: String,
        why: String,
    },
}

/// The reply line. User text is shown only inside code spans, so it can neither mention
/// anyone nor add markup.
impl fmt::Display for CommandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CommandError::Unknown { word } => {
                write!(f, "Unknown command {}.", code(&format!("{PREFIX} {word}")))
            }
            CommandError::BadArgument {
                command,
                argument,
                why,
            } => write!(
                f,
                "Bad argument {} to {}: {why}.",
                code(argument),
                code(&format!("{PREFIX} {command}")),
            ),
        }
    }
}

impl std::error::Error for CommandError {}

/// One command: how it is written, what it does, and how its arguments are read.
struct Spec {
    name: &'static str,
    /// Its arguments as the help shows them; empty when it takes none.
    args: &'static str,
    /// One line for the help.
    about: &'static str,
    /// Reads the arguments.
    parse: fn(&[&str]) -> Result<Command, Rejected>,
}

/// The first argument a command cannot take, and why; [`parse_line`] adds the command's name.
struct Rejected {
    argument: String,
    why: String,
}

const BUILD: Spec = Spec {
    name: "build",
    args: "[CHROOT…]",
    about: "Build the latest commit again, in the chroots named or else in every chroot of the job.",
    parse: |args| {
        let mut chroots: Vec<String> = Vec::new();
        for &arg in args {
            if Chroot::parse(arg).is_none() {
                return Err(Rejected {
                    argument: arg.to_owned(),
                    why: "it is not a chroot name of the form `<os>-<version>-<arch>`, \
                          such as `fedora-41-x86_64`"
                        .to_owned(),
                });
            }
            if !chroots.iter().any(|c| c == arg) {
                chroots.push(arg.to_owned());
            }
        }
        Ok(Command::Build { chroots })
    },
};

const REBUILD_FAILED: Spec = Spec {
    name: "rebuild-failed",
    args: "",
    about: "Build again only the chroots that failed in the latest build.",
    parse: |args| no_arguments(args).map(|()| Command::RebuildFailed),
};

const CANCEL: Spec = Spec {
    name: "cancel",
    args: "",
    about: "Cancel the running and queued builds of this change.",
    parse: |args| no_arguments(args).map(|()| Command::Cancel),
};

const HELP: Spec = Spec {
    name: "help",
    args: "",
    about: "Show this help.",
    parse: |args| no_arguments(args).map(|()| Command::Help),
};

/// Every command, in the order the help lists them. The parser looks names up here.
const COMMANDS: [&Spec; 4] = [&BUILD, &REBUILD_FAILED, &CANCEL, &HELP];

fn no_arguments(args: &[&str]) -> Result<(), Rejected> {
    match args.first() {
        None => Ok(()),
        Some(arg) => Err(Rejected {
            argument: (*arg).to_owned(),
            why: "it takes no arguments".to_owned(),
        }),
    }
}

/// The help text, Markdown, made from [`COMMANDS`].
pub fn help_text() -> String {
    let mut text = String::from(
        "Write a command at the start of its own line in a comment; \
         several lines make several commands.\n\n\
         | Command | What it does |\n\
         | --- | --- |\n",
    );
    for spec in COMMANDS {
        let usage = if spec.args.is_empty() {
            format!("{PREFIX} {}", spec.name)
        } else {
            format!("{PREFIX} {} {}", spec.name, spec.args)
        };
        text.push_str(&format!("| {} | {} |\n", code(&usage), spec.about));
    }
    text.push_str(&format!(
        "\n{} alone shows this help. Commands inside code blocks, inline code and quotes are \
         ignored.\n",
        code(PREFIX)
    ));
    text
}

/// Every `/copr …` command in a comment, one result each, in order.
pub fn parse_comment(body: &str) -> Vec<Result<Command, CommandError>> {
    prose_line_starts(body)
        .into_iter()
        .filter_map(parse_line)
        .collect()
}

/// Reads one line that starts with prose; `None` when it is not a `/copr` line.
fn parse_line(line: &str) -> Option<Result<Command, CommandError>> {
    let rest = line.strip_prefix(PREFIX)?;
    if rest.chars().next().is_some_and(|c| !c.is_whitespace()) {
        return None;
    }
    let mut words = rest.split_whitespace();
    let Some(word) = words.next() else {
        return Some(Ok(Command::Help));
    };
    let args: Vec<&str> = words.collect();
    let Some(spec) = COMMANDS.iter().find(|spec| spec.name == word) else {
        return Some(Err(CommandError::Unknown {
            word: word.to_owned(),
        }));
    };
    Some(
        (spec.parse)(&args).map_err(|Rejected { argument, why }| CommandError::BadArgument {
            command: spec.name,
            argument,
            why,
        }),
    )
}

/// Where the scanner is between lines.
enum Block {
    Prose,
    /// Inside a fenced code block opened by `len` times `fence`.
    Fence {
        fence: u8,
        len: usize,
    },
    /// Inside an HTML comment that started a line and has not yet ended.
    HtmlComment,
}

/// A line of the paragraph being gathered: its text after the indentation, and whether it
/// could hold a command (an indented line continues a paragraph but cannot).
struct ParagraphLine<'a> {
    text: &'a str,
    candidate: bool,
}

/// The lines of `body` that start as rendered prose, with their indentation removed: every
/// line outside code blocks, quotes and HTML comments whose start is not inside an inline code
/// span or HTML comment begun on an earlier line.
fn prose_line_starts(body: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut paragraph: Vec<ParagraphLine<'_>> = Vec::new();
    let mut block = Block::Prose;
    for line in body.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        let (columns, text) = split_indent(line);
        match block {
            Block::Fence { fence, len } => {
                if closes_fence(text, fence, len) {
                    block = Block::Prose;
                }
                continue;
            }
            Block::HtmlComment => {
                if line.contains("-->") {
                    block = Block::Prose;
                }
                continue;
            }
            Block::Prose => {}
        }
        // Fences are recognised at any indentation, so one inside a list item hides its
        // contents too; where CommonMark would disagree, we only ignore more.
        if let Some((fence, len)) = opens_fence(text) {
            flush_paragraph(&mut paragraph, &mut out);
            block = Block::Fence { fence, len };
        } else if text.trim().is_empty() || text.starts_with('>') {
            flush_paragraph(&mut paragraph, &mut out);
        } else if let Some(after) = text.strip_prefix("<!--") {
            flush_paragraph(&mut paragraph, &mut out);
            if !after.contains("-->") {
                block = Block::HtmlComment;
            }
        } else if columns >= 4 {
            // An indented line continues a paragraph (where a code span may cross it), and
            // otherwise is an indented code block; a command in either is not at a line start.
            if !paragraph.is_empty() {
                paragraph.push(ParagraphLine {
                    text,
                    candidate: false,
                });
            }
        } else {
            paragraph.push(ParagraphLine {
                text,
                candidate: true,
            });
        }
    }
    flush_paragraph(&mut paragraph, &mut out);
    out
}

/// Moves the candidate lines of a finished paragraph to `out`, leaving out those that start
/// inside a code span or an inline HTML comment, which may span lines.
fn flush_paragraph<'a>(paragraph: &mut Vec<ParagraphLine<'a>>, out: &mut Vec<&'a str>) {
    let joined = paragraph
        .iter()
        .map(|line| line.text)
        .collect::<Vec<_>>()
        .join("\n");
    let hidden = hidden_ranges(joined.as_bytes());
    let mut offset = 0;
    for line in paragraph.drain(..) {
        if line.candidate && !hidden.iter().any(|range| range.contains(&offset)) {
            out.push(line.text);
        }
        offset += line.text.len() + 1;
    }
}

/// The byte ranges of a paragraph's code spans and inline HTML comments, by CommonMark's rules:
/// a run of backticks opens a span closed by the next run of the same length, and is literal
/// text if there is none; a backslash escapes a backtick outside a span.
fn hidden_ranges(text: &[u8]) -> Vec<Range<usize>> {
    let mut ranges = Vec::new();
    let mut i = 0;
    while i < text.len() {
        match text[i] {
            b'\\' => i += 2,
            b'`' => {
                let len = run_length(text, i, b'`');
                let mut j = i + len;
                let mut end = None;
                while j < text.len() {
                    if text[j] == b'`' {
                        let close = run_length(text, j, b'`');
                        if close == len {
                            end = Some(j + close);
                            break;
                        }
                        j += close;
                    } else {
                        j += 1;
                    }
                }
                match end {
                    Some(end) => {
                        ranges.push(i..end);
                        i = end;
                    }
                    None => i += len,
                }
            }
            b'<' if text[i..].starts_with(b"<!--") => {
                match text[i + 4..].windows(3).position(|w| w == b"-->") {
                    Some(at) => {
                        let end = i + 4 + at + 3;
                        ranges.push(i..end);
                        i = end;
                    }
                    None => i += 4,
                }
            }
            _ => i += 1,
        }
    }
    ranges
}

fn run_length(text: &[u8], from: usize, byte: u8) -> usize {
    text[from..].iter().take_while(|&&b| b == byte).count()
}

/// The indentation of a line in columns (tabs stop every four) and the text after it.
fn split_indent(line: &str) -> (usize, &str) {
    let mut columns = 0;
    for (at, c) in line.char_indices() {
        match c {
            ' ' => columns += 1,
            '\t' => columns += 4 - columns % 4,
            _ => return (columns, &line[at..]),
        }
    }
    (columns, "")
}

/// A fence opening: three or more backticks or tildes; after backticks, no backtick may follow
/// on the line (that would be an inline code span instead).
fn opens_fence(text: &str) -> Option<(u8, usize)> {
    let fence = *text.as_bytes().first()?;
    if fence != b'`' && fence != b'~' {
        return None;
    }
    let len = run_length(text.as_bytes(), 0, fence);
    let info = &text[len..];
    (len >= 3 && !(fence == b'`' && info.contains('`'))).then_some((fence, len))
}

/// A fence closing: at least as many of the opening character, then only whitespace.
fn closes_fence(text: &str, fence: u8, len: usize) -> bool {
    let run = run_length(text.as_bytes(), 0, fence);
    run >= len && text[run..].trim().is_empty()
}

/// `text` as a Markdown code span, with a fence longer than any backtick run inside it.
fn code(text: &str) -> String {
    let longest = text.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat(longest + 1);
    if text.starts_with('`') || text.ends_with('`') {
        format!("{fence} {text} {fence}")
    } else {
        format!("{fence}{text}{fence}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(chroots: &[&str]) -> Command {
        Command::Build {
            chroots: chroots.iter().map(|c| (*c).to_owned()).collect(),
        }
    }

    fn one(body: &str) -> Result<Command, CommandError> {
        let mut results = parse_comment(body);
        assert_eq!(results.len(), 1, "{body:?} gave {results:?}");
        results.remove(0)
    }

    fn none(body: &str) {
        assert_eq!(parse_comment(body), vec![], "{body:?}");
    }

    fn bad(command: &'static str, argument: &str, why: &str) -> CommandError {
        CommandError::BadArgument {
            command,
            argument: argument.to_owned(),
            why: why.to_owned(),
        }
    }

    const NOT_A_CHROOT: &str = "it is not a chroot name of the form `<os>-<version>-<arch>`, \
                                such as `fedora-41-x86_64`";

    #[test]
    fn each_command() {
        assert_eq!(one("/copr build"), Ok(build(&[])));
        assert_eq!(one("/copr rebuild-failed"), Ok(Command::RebuildFailed));
        assert_eq!(one("/copr cancel"), Ok(Command::Cancel));
        assert_eq!(one("/copr help"), Ok(Command::Help));
    }

    #[test]
    fn copr_alone_is_help() {
        assert_eq!(one("/copr"), Ok(Command::Help));
        assert_eq!(one("/copr   "), Ok(Command::Help));
    }

    #[test]
    fn build_arguments() {
        assert_eq!(
            one("/copr build fedora-41-x86_64 centos-stream-9-aarch64"),
            Ok(build(&["fedora-41-x86_64", "centos-stream-9-aarch64"]))
        );
        assert_eq!(
            one("  /copr   build\tepel-9-x86_64  "),
            Ok(build(&["epel-9-x86_64"]))
        );
    }

    #[test]
    fn repeated_chroots_are_kept_once_in_first_order() {
        assert_eq!(
            one("/copr build fedora-41-x86_64 epel-9-x86_64 fedora-41-x86_64"),
            Ok(build(&["fedora-41-x86_64", "epel-9-x86_64"]))
        );
    }

    #[test]
    fn several_commands_in_order() {
        let body = "Thanks!\n/copr cancel\nand then\n/copr build fedora-41-x86_64\n/copr nope";
        assert_eq!(
            parse_comment(body),
            vec![
                Ok(Command::Cancel),
                Ok(build(&["fedora-41-x86_64"])),
                Err(CommandError::Unknown {
                    word: "nope".to_owned()
                }),
            ]
        );
    }

    #[test]
    fn text_before_and_after() {
        assert_eq!(
            one("The spec is fixed now.\n\n/copr build\n\nLet's see."),
            Ok(build(&[]))
        );
        none("Please run /copr build again");
        none("- /copr build");
    }

    #[test]
    fn crlf_line_ends() {
        assert_eq!(
            parse_comment("Hello\r\n/copr build fedora-41-x86_64\r\n/copr cancel\r\n"),
            vec![Ok(build(&["fedora-41-x86_64"])), Ok(Command::Cancel)]
        );
        none("```\r\n/copr build\r\n```\r\n");
    }

    #[test]
    fn fenced_code_is_ignored() {
        none("```\n/copr build\n```");
        none("~~~\n/copr build\n~~~");
        none("```console\n$ echo\n/copr build\n```");
        none("~~~~ text\n/copr build\n~~~\n/copr cancel\n~~~~");
        none("  - item\n    ```\n    /copr build\n    ```");
        // A fence never closed runs to the end of the comment.
        none("```\n/copr build");
        assert_eq!(
            parse_comment("```\n/copr build\n```\n/copr cancel\n~~~\n/copr help\n~~~"),
            vec![Ok(Command::Cancel)]
        );
        // A closing fence must use the opening character.
        none("```\n~~~\n/copr build\n```");
    }

    #[test]
    fn indented_code_is_ignored() {
        none("    /copr build");
        none("\t/copr build");
        none("  \t/copr build");
        assert_eq!(one("   /copr build"), Ok(build(&[])));
    }

    #[test]
    fn inline_code_is_ignored() {
        none("`/copr build`");
        none("``/copr build``");
        none("Type `/copr build` to rebuild.");
        none("A span `that goes\n/copr build` over two lines");
        // Backticks without a closing run are text, not a span.
        assert_eq!(one("a ` tick\n/copr cancel"), Ok(Command::Cancel));
        assert_eq!(one("an \\`escaped\n/copr cancel `"), Err(bad_cancel("`")));
        // A paragraph ends at a blank line, and so does any span.
        assert_eq!(one("a ` tick\n\n/copr cancel `"), Err(bad_cancel("`")));
        // A one-line ``` with a closing run is inline code, not a fence.
        assert_eq!(one("```x```\n/copr cancel"), Ok(Command::Cancel));
    }

    fn bad_cancel(argument: &str) -> CommandError {
        bad("cancel", argument, "it takes no arguments")
    }

    #[test]
    fn quotes_are_ignored() {
        none("> /copr build");
        none("  > /copr build");
        none(">/copr build");
        none("> > /copr build");
        assert_eq!(
            one("> /copr build\n\nSure:\n/copr build fedora-41-x86_64"),
            Ok(build(&["fedora-41-x86_64"]))
        );
        // A fence opened in a quote ends with the quote.
        assert_eq!(one("> ```\n/copr cancel"), Ok(Command::Cancel));
    }

    #[test]
    fn html_comments_are_ignored() {
        none("<!--\n/copr build\n-->");
        none("<!-- /copr build -->");
        none("text <!-- a note\n/copr build -->");
        assert_eq!(one("<!-- hidden -->\n/copr cancel"), Ok(Command::Cancel));
        assert_eq!(
            one("<!--\n/copr build\n-->\n/copr cancel"),
            Ok(Command::Cancel)
        );
    }

    #[test]
    fn unknown_command() {
        assert_eq!(
            one("/copr frobnicate now"),
            Err(CommandError::Unknown {
                word: "frobnicate".to_owned()
            })
        );
        assert_eq!(
            one("/copr Build"),
            Err(CommandError::Unknown {
                word: "Build".to_owned()
            })
        );
    }

    #[test]
    fn bad_chroot_argument() {
        assert_eq!(
            one("/copr build fedora-41-x86_64 fedora-all"),
            Err(bad("build", "fedora-all", NOT_A_CHROOT))
        );
        assert_eq!(
            one("/copr build please"),
            Err(bad("build", "please", NOT_A_CHROOT))
        );
        assert_eq!(
            one("/copr build `fedora-41-x86_64`"),
            Err(bad("build", "`fedora-41-x86_64`", NOT_A_CHROOT))
        );
    }

    #[test]
    fn arguments_to_a_command_that_takes_none() {
        assert_eq!(
            one("/copr rebuild-failed fedora-41-x86_64"),
            Err(bad(
                "rebuild-failed",
                "fedora-41-x86_64",
                "it takes no arguments"
            ))
        );
        assert_eq!(one("/copr cancel now please"), Err(bad_cancel("now")));
        assert_eq!(
            one("/copr help me"),
            Err(bad("help", "me", "it takes no arguments"))
        );
    }

    #[test]
    fn not_the_prefix() {
        none("/coprx build");
        none("/copr-build");
        none("/Copr build");
        none("/COPR build");
        none("copr build");
        none("");
        none("\n\n");
    }

    #[test]
    fn every_row_parses_to_its_own_command() {
        for spec in COMMANDS {
            let command = one(&format!("{PREFIX} {}", spec.name)).expect("no arguments parse");
            assert_eq!(command.name(), spec.name);
            assert_eq!(command.to_string(), format!("{PREFIX} {}", spec.name));
        }
        let command = build(&["fedora-41-x86_64", "epel-9-x86_64"]);
        assert_eq!(one(&command.to_string()), Ok(command));
    }

    #[test]
    fn error_replies() {
        let replies: Vec<String> = parse_comment(
            "/copr frobnicate\n/copr build fedora\n/copr cancel now\n/copr `x`\n/copr build a``b",
        )
        .into_iter()
        .map(|result| result.expect_err("all bad").to_string())
        .collect();
        assert_eq!(
            replies,
            vec![
                "Unknown command `/copr frobnicate`.",
                "Bad argument `fedora` to `/copr build`: it is not a chroot name of the form \
                 `<os>-<version>-<arch>`, such as `fedora-41-x86_64`.",
                "Bad argument `now` to `/copr cancel`: it takes no arguments.",
                "Unknown command `` /copr `x` ``.",
                "Bad argument ```a``b``` to `/copr build`: it is not a chroot name of the form \
                 `<os>-<version>-<arch>`, such as `fedora-41-x86_64`.",
            ]
        );
    }

    #[test]
    fn help_text_snapshot() {
        assert_eq!(
            help_text(),
            "Write a command at the start of its own line in a comment; several lines make \
             several commands.\n\
             \n\
             | Command | What it does |\n\
             | --- | --- |\n\
             | `/copr build [CHROOT…]` | Build the latest commit again, in the chroots named or \
             else in every chroot of the job. |\n\
             | `/copr rebuild-failed` | Build again only the chroots that failed in the latest \
             build. |\n\
             | `/copr cancel` | Cancel the running and queued builds of this change. |\n\
             | `/copr help` | Show this help. |\n\
             \n\
             `/copr` alone shows this help. Commands inside code blocks, inline code and quotes \
             are ignored.\n"
        );
    }
}
