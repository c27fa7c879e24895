//! The [`Allocator`] that talks to an existing resalloc server (REFERENCE §6), for sites that
//! already run one for Copr: seed steps 3 and 9, "a builder is asked for".
//!
//! resalloc speaks XML-RPC over HTTP (port 49100 by default). Its server API
//! (`resallocserver/api.py`) has four methods, and this client maps them one to one:
//!
//! - `takeTicket(tags, sandbox)` → the new ticket's id (an int);
//! - `collectTicket(id)` → a struct `{ready, output, closed, failed}`; `output` is the resource's
//!   `cmd_new` output as *bytes*, so it travels as `<base64>`. An unknown ticket answers with
//!   every field nil rather than a fault;
//! - `closeTicket(id)` → nil; an unknown ticket is a fault whose string says `no such ticket`;
//! - `waitTicket(id)` blocks a server thread until the ticket is ready. We do not use it: a
//!   blocked call cannot be canceled, and slow cancels while waiting for a builder are one of
//!   Copr's pains (copr#2879). The scheduler polls `collectTicket` instead, as Copr does.
//!
//! The XML-RPC codec below covers what resalloc's Python `xmlrpc.server` sends and expects: no
//! more, so it stays small enough to read in one sitting.

use crate::alloc::{AllocError, Allocator, Resource, TicketId, TicketState};
use async_trait::async_trait;
use std::time::Duration;

/// A call that takes longer than this is a server in trouble: resalloc answers every method
/// from its database at once (we never call the blocking `waitTicket`).
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// Connecting is quick on the network where resalloc runs; failing fast lets the scheduler
/// retry on its next round instead of holding a task.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// resalloc keeps at most 512 bytes of `cmd_new` output; an answer this large is not resalloc.
const MAX_RESPONSE_BYTES: usize = 1024 * 1024;

/// What resalloc says in the fault for a ticket it does not know (`closeTicket`).
const NO_SUCH_TICKET: &str = "no such ticket";

/// Talks to one resalloc server.
#[derive(Debug, Clone)]
pub struct ResallocClient {
    url: reqwest::Url,
    http: reqwest::Client,
}

impl ResallocClient {
    /// A client for the server at `url` (`http://resalloc.example.org:49100`). Nothing is sent
    /// until the first call.
    pub fn new(url: &str) -> Result<ResallocClient, AllocError> {
        let url = reqwest::Url::parse(url)
            .map_err(|e| AllocError::Internal(format!("resalloc URL {url:?}: {e}")))?;
        let http = reqwest::Client::builder()
            .timeout(CALL_TIMEOUT)
            .connect_timeout(CONNECT_TIMEOUT)
            // resalloc runs next to the backend, and Python's xmlrpc client (what Copr uses)
            // ignores proxy variables as well: a site-wide HTTP_PROXY must not capture it.
            .no_proxy()
            .build()
            .map_err(|e| AllocError::Internal(format!("resalloc HTTP client: {e}")))?;
        Ok(ResallocClient { url, http })
    }

    /// The server's URL, for logs.
    pub fn url(&self) -> &str {
        self.url.as_str()
    }

    /// Calls `method` and returns its single result, or why there is none.
    async fn call(&self, method: &str, params: &[Value]) -> Result<Value, RpcError> {
        let body = xml::method_call(method, params)?;
        let mut response = self
            .http
            .post(self.url.clone())
            .header(reqwest::header::CONTENT_TYPE, "text/xml")
            .body(body)
            .send()
            .await
            .map_err(RpcError::Transport)?;
        // Faults come with 200; anything else is the HTTP layer refusing the call.
        let status = response.status();
        if !status.is_success() {
            return Err(RpcError::Status(status.as_u16()));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(RpcError::Transport)? {
            if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
                return Err(RpcError::TooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        let text = std::str::from_utf8(&body)
            .map_err(|_| RpcError::Malformed("the answer is not UTF-8".to_owned()))?;
        xml::method_response(text)?
    }

    /// [`Self::call`], with its error told in the allocator's terms.
    async fn call_on_ticket(&self, method: &str, ticket: TicketId) -> Result<Value, AllocError> {
        self.call(method, &[Value::Int(ticket)])
            .await
            .map_err(|e| match e {
                RpcError::Fault { ref string, .. } if string.contains(NO_SUCH_TICKET) => {
                    AllocError::UnknownTicket(ticket)
                }
                e => self.internal(method, e),
            })
    }

    fn internal(&self, method: &str, error: RpcError) -> AllocError {
        AllocError::Internal(format!("resalloc at {}: {method}: {error}", self.url))
    }
}

#[async_trait]
impl Allocator for ResallocClient {
    async fn take(&self, tags: &[String], sandbox: &str) -> Result<TicketId, AllocError> {
        let mut params = vec![Value::Array(
            tags.iter().map(|tag| Value::String(tag.clone())).collect(),
        )];
        // resalloc's own client leaves an empty sandbox out: the server then keeps the
        // resource to this one ticket instead of sandboxing it under "".
        if !sandbox.is_empty() {
            params.push(Value::String(sandbox.to_owned()));
        }
        match self.call("takeTicket", &params).await {
            Ok(Value::Int(ticket)) => Ok(ticket),
            Ok(other) => Err(self.internal(
                "takeTicket",
                RpcError::Malformed(format!("expected a ticket id, got {other:?}")),
            )),
            Err(e) => Err(self.internal("takeTicket", e)),
        }
    }

    async fn collect(&self, ticket: TicketId) -> Result<TicketState, AllocError> {
        let answer = self.call_on_ticket("collectTicket", ticket).await?;
        let collected = Collected::read(&answer)
            .map_err(|why| self.internal("collectTicket", RpcError::Malformed(why)))?;
        collected.state(ticket)
    }

    async fn close(&self, ticket: TicketId) -> Result<(), AllocError> {
        // closeTicket answers nil; closing a closed ticket is fine for resalloc as well.
        self.call_on_ticket("closeTicket", ticket).await.map(drop)
    }
}

/// `collectTicket`'s answer, nil fields as `None`.
#[derive(Debug, PartialEq)]
struct Collected {
    ready: Option<bool>,
    output: Option<Vec<u8>>,
    closed: Option<bool>,
    failed: Option<bool>,
}

impl Collected {
    fn read(answer: &Value) -> Result<Collected, String> {
        let Value::Struct(members) = answer else {
            return Err(format!("expected a struct, got {answer:?}"));
        };
        let field = |name: &str| {
            members
                .iter()
                .find(|(member, _)| member == name)
                .map(|(_, value)| value)
                .ok_or_else(|| format!("the answer has no {name:?}"))
        };
        let flag = |name: &str| match field(name)? {
            Value::Bool(flag) => Ok(Some(*flag)),
            Value::Nil => Ok(None),
            other => Err(format!("{name:?} is {other:?}, not a boolean")),
        };
        let output = match field("output")? {
            Value::Base64(bytes) => Some(bytes.clone()),
            // resalloc on Python 2 sent the output as a plain string.
            Value::String(text) => Some(text.clone().into_bytes()),
            Value::Nil => None,
            other => return Err(format!("\"output\" is {other:?}, not bytes")),
        };
        Ok(Collected {
            ready: flag("ready")?,
            output,
            closed: flag("closed")?,
            failed: flag("failed")?,
        })
    }

    /// The ticket's state. resalloc keeps `ready` true once a resource was assigned, even after
    /// the ticket was closed or its resource died, so `closed` and `failed` are read first (in
    /// the order of resalloc's own `ticket-check`).
    fn state(self, ticket: TicketId) -> Result<TicketState, AllocError> {
        let Some(ready) = self.ready else {
            // collectTicket answers an unknown ticket with nil everywhere, not with a fault.
            return Err(AllocError::UnknownTicket(ticket));
        };
        if self.closed == Some(true) {
            return Ok(TicketState::Closed);
        }
        if self.failed == Some(true) {
            return Ok(TicketState::Failed);
        }
        if !ready {
            return Ok(TicketState::Waiting);
        }
        // A resource we cannot reach is as good as a dead one: the task closes this ticket and
        // takes another, and the log says which pool prints nonsense.
        let Some(output) = self.output else {
            tracing::warn!(ticket, "resalloc: the ready ticket has no output");
            return Ok(TicketState::Failed);
        };
        let output = String::from_utf8_lossy(&output);
        match Resource::parse(&output) {
            Ok(resource) => Ok(TicketState::Ready(resource)),
            Err(error) => {
                tracing::warn!(ticket, error, "resalloc: the ticket's resource is unusable");
                Ok(TicketState::Failed)
            }
        }
    }
}

/// Why an XML-RPC call gave no result.
#[derive(Debug, thiserror::Error)]
enum RpcError {
    #[error("{}", with_causes(.0))]
    Transport(reqwest::Error),
    #[error("HTTP status {0}")]
    Status(u16),
    #[error("the answer is larger than {MAX_RESPONSE_BYTES} bytes")]
    TooLarge,
    #[error("unreadable answer: {0}")]
    Malformed(String),
    /// The server ran the method and it raised.
    #[error("fault {code}: {string}")]
    Fault { code: i64, string: String },
    #[error("cannot send {0:?} in XML")]
    Unencodable(String),
}

/// reqwest's own message names only the URL; the reason ("Connection refused") is in its causes.
fn with_causes(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut cause = std::error::Error::source(error);
    while let Some(inner) = cause {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        cause = inner.source();
    }
    text
}

/// An XML-RPC value, as far as resalloc uses them.
#[derive(Debug, Clone, PartialEq)]
enum Value {
    /// `<int>`, `<i4>` or `<i8>`.
    Int(i64),
    Bool(bool),
    /// `<string>`, or a `<value>` without a type element.
    String(String),
    Base64(Vec<u8>),
    /// Members in the order they came.
    Struct(Vec<(String, Value)>),
    Array(Vec<Value>),
    /// `<nil/>`: Python's `None`, which resalloc's server is set to allow.
    Nil,
}

/// Writing method calls and reading method responses.
mod xml {
    use super::{RpcError, Value};
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD as BASE64;
    use std::fmt::Write as _;

    /// Nested arrays and structs deeper than this are not an answer from resalloc (its deepest
    /// is a fault: a struct in a value); the bound keeps a hostile answer off our stack.
    const MAX_DEPTH: usize = 16;

    /// The request body calling `method` with `params`.
    pub(super) fn method_call(method: &str, params: &[Value]) -> Result<String, RpcError> {
        let mut out = String::from("<?xml version=\"1.0\"?>\n<methodCall><methodName>");
        escape_into(&mut out, method)?;
        out.push_str("</methodName><params>");
        for param in params {
            out.push_str("<param>");
            value_into(&mut out, param)?;
            out.push_str("</param>");
        }
        out.push_str("</params></methodCall>\n");
        Ok(out)
    }

    fn value_into(out: &mut String, value: &Value) -> Result<(), RpcError> {
        out.push_str("<value>");
        match value {
            // `<int>` is 32 bits; Python reads the `<i8>` extension for the rest. (Writing to a
            // String cannot fail, hence the ignored results.)
            Value::Int(n) if i32::try_from(*n).is_ok() => {
                let _ = write!(out, "<int>{n}</int>");
            }
            Value::Int(n) => {
                let _ = write!(out, "<i8>{n}</i8>");
            }
            Value::Bool(flag) => {
                let _ = write!(out, "<boolean>{}</boolean>", u8::from(*flag));
            }
            Value::String(text) => {
                out.push_str("<string>");
                escape_into(out, text)?;
                out.push_str("</string>");
            }
            Value::Base64(bytes) => {
                let _ = write!(out, "<base64>{}</base64>", BASE64.encode(bytes));
            }
            Value::Struct(members) => {
                out.push_str("<struct>");
                for (name, member) in members {
                    out.push_str("<member><name>");
                    escape_into(out, name)?;
                    out.push_str("</name>");
                    value_into(out, member)?;
                    out.push_str("</member>");
                }
                out.push_str("</struct>");
            }
            Value::Array(items) => {
                out.push_str("<array><data>");
                for item in items {
                    value_into(out, item)?;
                }
                out.push_str("</data></array>");
            }
            Value::Nil => out.push_str("<nil/>"),
        }
        out.push_str("</value>");
        Ok(())
    }

    /// Escapes text for element content. XML 1.0 has no way to carry most control characters,
    /// even as references, so a string holding one is refused rather than sent broken.
    fn escape_into(out: &mut String, text: &str) -> Result<(), RpcError> {
        for c in text.chars() {
            match c {
                '&' => out.push_str("&amp;"),
                '<' => out.push_str("&lt;"),
                '>' => out.push_str("&gt;"),
                '"' => out.push_str("&quot;"),
                // A raw CR would reach the server as LF (XML end-of-line handling).
                '\r' => out.push_str("&#13;"),
                '\t' | '\n' => out.push(c),
                c if !is_xml_char(c) => return Err(RpcError::Unencodable(text.to_owned())),
                c => out.push(c),
            }
        }
        Ok(())
    }

    /// XML 1.0's `Char` production.
    fn is_xml_char(c: char) -> bool {
        matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}')
            || c >= '\u{10000}'
    }

    /// The result of a `<methodResponse>`, or its fault as [`RpcError::Fault`].
    pub(super) fn method_response(text: &str) -> Result<Result<Value, RpcError>, RpcError> {
        let mut reader = Reader::new(text);
        reader.expect_start("methodResponse")?;
        let outcome = match reader.next_element()? {
            Token::Start("params") => {
                reader.expect_start("param")?;
                reader.expect_start("value")?;
                let value = reader.value(0)?;
                reader.expect_end("param")?;
                reader.expect_end("params")?;
                Ok(value)
            }
            Token::Start("fault") => {
                reader.expect_start("value")?;
                let fault = reader.value(0)?;
                reader.expect_end("fault")?;
                Err(fault_of(&fault)?)
            }
            other => return Err(unexpected(&other, "<params> or <fault>")),
        };
        reader.expect_end("methodResponse")?;
        match reader.next_element()? {
            Token::Eof => Ok(outcome),
            other => Err(unexpected(&other, "the end of the answer")),
        }
    }

    fn fault_of(fault: &Value) -> Result<RpcError, RpcError> {
        let Value::Struct(members) = fault else {
            return Err(malformed(format!("the fault is {fault:?}, not a struct")));
        };
        let member = |name: &str| members.iter().find(|(n, _)| n == name).map(|(_, v)| v);
        match (member("faultCode"), member("faultString")) {
            (Some(Value::Int(code)), Some(Value::String(string))) => Ok(RpcError::Fault {
                code: *code,
                string: string.clone(),
            }),
            _ => Err(malformed(format!(
                "the fault lacks a code or a string: {fault:?}"
            ))),
        }
    }

    fn malformed(why: String) -> RpcError {
        RpcError::Malformed(why)
    }

    fn unexpected(token: &Token<'_>, wanted: &str) -> RpcError {
        malformed(format!("expected {wanted}, found {token}"))
    }

    /// One step of the document. Attributes are skipped: XML-RPC has none.
    #[derive(Debug, PartialEq)]
    enum Token<'a> {
        Start(&'a str),
        End(&'a str),
        /// `<name/>`
        Empty(&'a str),
        /// Character data with references resolved; CDATA sections come as text too.
        Text(String),
        Eof,
    }

    impl std::fmt::Display for Token<'_> {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            match self {
                Token::Start(name) => write!(f, "<{name}>"),
                Token::End(name) => write!(f, "</{name}>"),
                Token::Empty(name) => write!(f, "<{name}/>"),
                Token::Text(text) => write!(f, "text {text:?}"),
                Token::Eof => f.write_str("the end of the answer"),
            }
        }
    }

    /// A pull reader over the subset of XML that XML-RPC answers use: elements, character
    /// data, references, CDATA, comments and the XML declaration. A DOCTYPE is refused, so
    /// no entity can be declared.
    struct Reader<'a> {
        rest: &'a str,
    }

    impl<'a> Reader<'a> {
        fn new(text: &'a str) -> Reader<'a> {
            Reader {
                rest: text.strip_prefix('\u{FEFF}').unwrap_or(text),
            }
        }

        /// The next token as it stands, whitespace included.
        fn next(&mut self) -> Result<Token<'a>, RpcError> {
            loop {
                if self.rest.is_empty() {
                    return Ok(Token::Eof);
                }
                if let Some(rest) = self.rest.strip_prefix("<?") {
                    self.rest = after(rest, "?>")?;
                } else if let Some(rest) = self.rest.strip_prefix("<!--") {
                    self.rest = after(rest, "-->")?;
                } else if let Some(rest) = self.rest.strip_prefix("<![CDATA[") {
                    let end = rest
                        .find("]]>")
                        .ok_or_else(|| malformed("an unterminated CDATA section".to_owned()))?;
                    self.rest = &rest[end + 3..];
                    let mut text = String::new();
                    push_raw(&mut text, &rest[..end]);
                    return Ok(Token::Text(text));
                } else if self.rest.starts_with("<!") {
                    return Err(malformed("a DOCTYPE or declaration".to_owned()));
                } else if let Some(rest) = self.rest.strip_prefix("</") {
                    let end = rest
                        .find('>')
                        .ok_or_else(|| malformed("an unterminated end tag".to_owned()))?;
                    self.rest = &rest[end + 1..];
                    return Ok(Token::End(rest[..end].trim_end()));
                } else if let Some(rest) = self.rest.strip_prefix('<') {
                    return self.start_tag(rest);
                } else {
                    let end = self.rest.find('<').unwrap_or(self.rest.len());
                    let text = unescape(&self.rest[..end])?;
                    self.rest = &self.rest[end..];
                    return Ok(Token::Text(text));
                }
            }
        }

        /// A start or empty-element tag; `rest` follows its `<`.
        fn start_tag(&mut self, rest: &'a str) -> Result<Token<'a>, RpcError> {
            let name_end = rest
                .find(|c: char| c.is_ascii_whitespace() || c == '/' || c == '>')
                .ok_or_else(|| malformed("an unterminated start tag".to_owned()))?;
            let name = &rest[..name_end];
            if name.is_empty() {
                return Err(malformed("a tag without a name".to_owned()));
            }
            // Skip attributes; a quoted value may hold '>' or '/'.
            let mut quote = None;
            for (i, c) in rest[name_end..].char_indices() {
                match (quote, c) {
                    (Some(q), c) if c == q => quote = None,
                    (Some(_), _) => {}
                    (None, '"' | '\'') => quote = Some(c),
                    (None, '>') => {
                        let tag = &rest[name_end..name_end + i];
                        self.rest = &rest[name_end + i + 1..];
                        return Ok(if tag.ends_with('/') {
                            Token::Empty(name)
                        } else {
                            Token::Start(name)
                        });
                    }
                    (None, _) => {}
                }
            }
            Err(malformed(format!("an unterminated <{name}> tag")))
        }

        /// The next token that is not whitespace between elements.
        fn next_element(&mut self) -> Result<Token<'a>, RpcError> {
            loop {
                match self.next()? {
                    Token::Text(text) if text.trim().is_empty() => continue,
                    token => return Ok(token),
                }
            }
        }

        fn expect_start(&mut self, name: &str) -> Result<(), RpcError> {
            match self.next_element()? {
                Token::Start(found) if found == name => Ok(()),
                other => Err(unexpected(&other, &format!("<{name}>"))),
            }
        }

        fn expect_end(&mut self, name: &str) -> Result<(), RpcError> {
            match self.next_element()? {
                Token::End(found) if found == name => Ok(()),
                other => Err(unexpected(&other, &format!("</{name}>"))),
            }
        }

        /// The character data up to `</name>`; no element may come in between.
        fn text_until_end(&mut self, name: &str) -> Result<String, RpcError> {
            let mut text = String::new();
            loop {
                match self.next()? {
                    Token::Text(more) => text.push_str(&more),
                    Token::End(found) if found == name => return Ok(text),
                    other => return Err(unexpected(&other, &format!("text or </{name}>"))),
                }
            }
        }

        /// A value whose `<value>` was just read, up to and including `</value>`.
        fn value(&mut self, depth: usize) -> Result<Value, RpcError> {
            if depth > MAX_DEPTH {
                return Err(malformed(format!("values nested deeper than {MAX_DEPTH}")));
            }
            let mut text = String::new();
            let value = loop {
                match self.next()? {
                    Token::Text(more) => text.push_str(&more),
                    // XML-RPC: a value without a type element is a string.
                    Token::End("value") => return Ok(Value::String(text)),
                    Token::Start(kind) if text.trim().is_empty() => {
                        break self.typed(kind, depth)?;
                    }
                    Token::Empty(kind) if text.trim().is_empty() => break empty(kind)?,
                    other => return Err(unexpected(&other, "a value")),
                }
            };
            self.expect_end("value")?;
            Ok(value)
        }

        /// The value inside `<kind>`, up to and including `</kind>`.
        fn typed(&mut self, kind: &str, depth: usize) -> Result<Value, RpcError> {
            match kind {
                "int" | "i4" | "i8" => {
                    let text = self.text_until_end(kind)?;
                    let n = text
                        .trim()
                        .parse()
                        .map_err(|_| malformed(format!("<{kind}>{text}</{kind}>")))?;
                    Ok(Value::Int(n))
                }
                "boolean" => match self.text_until_end(kind)?.trim() {
                    "1" => Ok(Value::Bool(true)),
                    "0" => Ok(Value::Bool(false)),
                    other => Err(malformed(format!("<boolean>{other}</boolean>"))),
                },
                "string" => Ok(Value::String(self.text_until_end(kind)?)),
                "base64" => {
                    let mut text = self.text_until_end(kind)?;
                    // Python wraps base64 in newlines, other writers at 76 columns.
                    text.retain(|c| !c.is_ascii_whitespace());
                    let bytes = BASE64
                        .decode(text)
                        .map_err(|e| malformed(format!("<base64>: {e}")))?;
                    Ok(Value::Base64(bytes))
                }
                "nil" => {
                    let inside = self.text_until_end(kind)?;
                    if inside.trim().is_empty() {
                        Ok(Value::Nil)
                    } else {
                        Err(malformed(format!("<nil>{inside}</nil>")))
                    }
                }
                "struct" => {
                    let mut members = Vec::new();
                    loop {
                        match self.next_element()? {
                            Token::Start("member") => {}
                            Token::End("struct") => return Ok(Value::Struct(members)),
                            other => return Err(unexpected(&other, "<member> or </struct>")),
                        }
                        self.expect_start("name")?;
                        let name = self.text_until_end("name")?;
                        self.expect_start("value")?;
                        members.push((name, self.value(depth + 1)?));
                        self.expect_end("member")?;
                    }
                }
                "array" => {
                    let mut items = Vec::new();
                    match self.next_element()? {
                        Token::Start("data") => loop {
                            match self.next_element()? {
                                Token::Start("value") => items.push(self.value(depth + 1)?),
                                Token::End("data") => break,
                                other => return Err(unexpected(&other, "<value> or </data>")),
                            }
                        },
                        Token::Empty("data") => {}
                        other => return Err(unexpected(&other, "<data>")),
                    }
                    self.expect_end("array")?;
                    Ok(Value::Array(items))
                }
                other => Err(malformed(format!(
                    "the type <{other}> is not one resalloc sends"
                ))),
            }
        }
    }

    /// A value written as an empty element: `<nil/>`, `<string/>` and the like.
    fn empty(kind: &str) -> Result<Value, RpcError> {
        match kind {
            "nil" => Ok(Value::Nil),
            "string" => Ok(Value::String(String::new())),
            "base64" => Ok(Value::Base64(Vec::new())),
            "struct" => Ok(Value::Struct(Vec::new())),
            other => Err(malformed(format!("an empty <{other}/>"))),
        }
    }

    /// What follows the first `terminator` in `text`.
    fn after<'a>(text: &'a str, terminator: &str) -> Result<&'a str, RpcError> {
        text.find(terminator)
            .map(|at| &text[at + terminator.len()..])
            .ok_or_else(|| malformed(format!("nothing closes with {terminator:?}")))
    }

    /// Character data with its references resolved.
    fn unescape(text: &str) -> Result<String, RpcError> {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(amp) = rest.find('&') {
            push_raw(&mut out, &rest[..amp]);
            let reference = &rest[amp + 1..];
            let semi = reference
                .find(';')
                .ok_or_else(|| malformed(format!("an unterminated reference in {text:?}")))?;
            let name = &reference[..semi];
            let c = match name {
                "amp" => '&',
                "lt" => '<',
                "gt" => '>',
                "quot" => '"',
                "apos" => '\'',
                _ => {
                    let code = if let Some(hex) = name.strip_prefix("#x") {
                        u32::from_str_radix(hex, 16).ok()
                    } else if let Some(decimal) = name.strip_prefix('#') {
                        decimal.parse().ok()
                    } else {
                        None
                    };
                    code.and_then(char::from_u32)
                        .filter(|c| is_xml_char(*c))
                        .ok_or_else(|| malformed(format!("an unknown reference &{name};")))?
                }
            };
            out.push(c);
            rest = &reference[semi + 1..];
        }
        push_raw(&mut out, rest);
        Ok(out)
    }

    /// Literal text with XML's end-of-line handling: CR LF and a lone CR read as LF (a CR that
    /// matters is sent as `&#13;`, which [`unescape`] keeps).
    fn push_raw(out: &mut String, raw: &str) {
        let mut lines = raw.split('\r');
        if let Some(first) = lines.next() {
            out.push_str(first);
        }
        for line in lines {
            out.push('\n');
            out.push_str(line.strip_prefix('\n').unwrap_or(line));
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        /// What Python's `xmlrpc.client.dumps` writes for the same call (resalloc's client).
        const PYTHON_TAKE_TICKET: &str = "<?xml version='1.0'?>\n<methodCall>\n<methodName>\
            takeTicket</methodName>\n<params>\n<param>\n<value><array><data>\n<value><string>\
            copr_builder</string></value>\n<value><string>arch_x86_64</string></value>\n</data>\
            </array></value>\n</param>\n<param>\n<value><string>o/p--u</string></value>\n\
            </param>\n</params>\n</methodCall>\n";

        /// resalloc's `collectTicket` answer for a ready ticket, as Python's
        /// `xmlrpc.server` writes it (`output` is bytes, hence base64).
        const PYTHON_COLLECTED: &str = "<?xml version='1.0'?>\n<methodResponse>\n<params>\n\
            <param>\n<value><struct>\n<member>\n<name>ready</name>\n<value><boolean>1</boolean>\
            </value>\n</member>\n<member>\n<name>output</name>\n<value><base64>\n\
            aG9zdDogYSZiCg==\n</base64></value>\n</member>\n<member>\n<name>closed</name>\n\
            <value><boolean>0</boolean></value>\n</member>\n<member>\n<name>failed</name>\n\
            <value><nil/></value></member>\n</struct></value>\n</param>\n</params>\n\
            </methodResponse>\n";

        const PYTHON_FAULT: &str = "<?xml version='1.0'?>\n<methodResponse>\n<fault>\n\
            <value><struct>\n<member>\n<name>faultCode</name>\n<value><int>1</int></value>\n\
            </member>\n<member>\n<name>faultString</name>\n<value><string>&lt;class \
            'resallocserver.api.ServerAPIException'&gt;:no such ticket 5</string></value>\n\
            </member>\n</struct></value>\n</fault>\n</methodResponse>\n";

        fn response(value_xml: &str) -> Result<Result<Value, RpcError>, RpcError> {
            method_response(&format!(
                "<methodResponse><params><param><value>{value_xml}</value></param></params>\
                 </methodResponse>"
            ))
        }

        fn value(value_xml: &str) -> Value {
            match response(value_xml) {
                Ok(Ok(value)) => value,
                other => panic!("{value_xml}: {other:?}"),
            }
        }

        /// The method and the parameters of a `<methodCall>`, read with our own reader.
        fn read_call(xml: &str) -> (String, Vec<Value>) {
            let mut reader = Reader::new(xml);
            reader.expect_start("methodCall").expect("<methodCall>");
            reader.expect_start("methodName").expect("<methodName>");
            let method = reader.text_until_end("methodName").expect("a method name");
            reader.expect_start("params").expect("<params>");
            let mut params = Vec::new();
            while let Token::Start("param") = reader.next_element().expect("a token") {
                reader.expect_start("value").expect("<value>");
                params.push(reader.value(0).expect("a value"));
                reader.expect_end("param").expect("</param>");
            }
            (method, params)
        }

        /// Our call carries what Python's client sends, whitespace aside.
        #[test]
        fn calls_carry_what_resalloc_expects() {
            let tags = Value::Array(vec![
                Value::String("copr_builder".into()),
                Value::String("arch_x86_64".into()),
            ]);
            let ours = method_call("takeTicket", &[tags, Value::String("o/p--u".into())])
                .expect("encodable");
            assert_eq!(
                ours,
                "<?xml version=\"1.0\"?>\n<methodCall><methodName>takeTicket</methodName>\
                 <params><param><value><array><data><value><string>copr_builder</string></value>\
                 <value><string>arch_x86_64</string></value></data></array></value></param>\
                 <param><value><string>o/p--u</string></value></param></params></methodCall>\n"
            );
            assert_eq!(read_call(&ours), read_call(PYTHON_TAKE_TICKET));
        }

        #[test]
        fn every_value_survives_a_round_trip() {
            let all = Value::Struct(vec![
                ("small".into(), Value::Int(-7)),
                ("large".into(), Value::Int(1 << 40)),
                ("yes".into(), Value::Bool(true)),
                ("no".into(), Value::Bool(false)),
                (
                    "text".into(),
                    Value::String("a & b <c> \"d\" 'e'\r\n\tž 🦀".into()),
                ),
                ("empty".into(), Value::String(String::new())),
                (
                    "bytes".into(),
                    Value::Base64(b"host: 192.0.2.7\n\xff".to_vec()),
                ),
                (
                    "list".into(),
                    Value::Array(vec![Value::Nil, Value::Array(vec![])]),
                ),
                ("none".into(), Value::Nil),
                ("nested".into(), Value::Struct(vec![])),
            ]);
            let call = method_call("m", std::slice::from_ref(&all)).expect("encodable");
            assert!(call.contains("<i8>1099511627776</i8>"), "{call}");
            assert!(
                call.contains("a &amp; b &lt;c&gt; &quot;d&quot; 'e'&#13;\n"),
                "{call}"
            );
            assert_eq!(read_call(&call), ("m".to_owned(), vec![all]));
        }

        #[test]
        fn control_characters_are_refused_not_sent() {
            assert!(matches!(
                method_call("takeTicket", &[Value::String("arch\u{1}".into())]),
                Err(RpcError::Unencodable(_))
            ));
        }

        #[test]
        fn reads_pythons_answers() {
            assert_eq!(
                method_response(PYTHON_COLLECTED)
                    .expect("well-formed")
                    .expect("no fault"),
                Value::Struct(vec![
                    ("ready".into(), Value::Bool(true)),
                    ("output".into(), Value::Base64(b"host: a&b\n".to_vec())),
                    ("closed".into(), Value::Bool(false)),
                    ("failed".into(), Value::Nil),
                ])
            );
            match method_response(PYTHON_FAULT).expect("well-formed") {
                Err(RpcError::Fault { code: 1, string }) => assert_eq!(
                    string,
                    "<class 'resallocserver.api.ServerAPIException'>:no such ticket 5"
                ),
                other => panic!("{other:?}"),
            }
            let ticket = "<?xml version='1.0'?>\n<methodResponse>\n<params>\n<param>\n\
                          <value><int>42</int></value>\n</param>\n</params>\n</methodResponse>\n";
            assert_eq!(
                method_response(ticket).expect("ok").expect("ok"),
                Value::Int(42)
            );
        }

        #[test]
        fn reads_the_other_spellings_of_the_spec() {
            // A value without a type element is a string, whitespace and all.
            assert_eq!(
                value(" plain &amp; simple "),
                Value::String(" plain & simple ".into())
            );
            assert_eq!(value(""), Value::String(String::new()));
            assert_eq!(value("<i4> 12 </i4>"), Value::Int(12));
            assert_eq!(value("<i8>-5000000000</i8>"), Value::Int(-5_000_000_000));
            assert_eq!(value("<string/>"), Value::String(String::new()));
            assert_eq!(
                value("<string><![CDATA[<x>]]>&#x41;&#66;</string>"),
                Value::String("<x>AB".into())
            );
            assert_eq!(value("<nil></nil>"), Value::Nil);
            assert_eq!(value("a\r\nb\rc&#13;"), Value::String("a\nb\nc\r".into()));
            assert_eq!(value("\n  <boolean>0</boolean>\n"), Value::Bool(false));
            assert_eq!(value("<array><data/></array>"), Value::Array(vec![]));
            assert_eq!(
                value("<struct><!-- c --><member><name>a</name><value>x</value></member></struct>"),
                Value::Struct(vec![("a".into(), Value::String("x".into()))])
            );
            let with_attributes = "<methodResponse xmlns:ex=\"a>b\"><params><param><value>\
                                   <int>1</int></value></param></params></methodResponse>";
            assert_eq!(
                method_response(with_attributes).expect("ok").expect("ok"),
                Value::Int(1)
            );
        }

        #[test]
        fn refuses_what_is_not_an_answer() {
            for broken in [
                "<boolean>2</boolean>",
                "<int>x</int>",
                "<double>1.5</double>",
                "text<int>1</int>",
                "<string><b/></string>",
                "<string>&bogus;</string>",
                "<string>&#0;</string>",
                "<base64>!!</base64>",
                "<int>1</i4>",
                "<struct><member><value>1</value></member></struct>",
            ] {
                assert!(
                    matches!(response(broken), Err(RpcError::Malformed(_))),
                    "{broken}: {:?}",
                    response(broken)
                );
            }
            for broken in [
                "",
                "<methodResponse>",
                "<!DOCTYPE x [<!ENTITY a \"b\">]><methodResponse/>",
                "<methodResponse><params><param><value>1</value></param></params>\
                 </methodResponse><extra/>",
                "<methodResponse><fault><value><string>no</string></value></fault>\
                 </methodResponse>",
            ] {
                assert!(
                    matches!(method_response(broken), Err(RpcError::Malformed(_))),
                    "{broken}"
                );
            }
            let deep = format!(
                "{}1{}",
                "<array><data><value>".repeat(40),
                "</value></data></array>".repeat(40)
            );
            assert!(matches!(response(&deep), Err(RpcError::Malformed(_))));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collected(
        ready: Option<bool>,
        output: Option<&str>,
        closed: Option<bool>,
        failed: Option<bool>,
    ) -> Collected {
        Collected {
            ready,
            output: output.map(|o| o.as_bytes().to_vec()),
            closed,
            failed,
        }
    }

    #[test]
    fn collect_answers_map_to_ticket_states() {
        let state = |c: Collected| c.state(7).map_err(|e| e.to_string());
        assert_eq!(
            state(collected(Some(false), None, Some(false), Some(false))),
            Ok(TicketState::Waiting)
        );
        assert_eq!(
            state(collected(
                Some(true),
                Some("host: 192.0.2.7\nname: x86-1\n"),
                Some(false),
                Some(false)
            )),
            Ok(TicketState::Ready(Resource {
                host: "192.0.2.7".into(),
                name: Some("x86-1".into()),
                ssh_port: 22
            }))
        );
        // resalloc keeps ready=true after a close and after the resource died.
        assert_eq!(
            state(collected(
                Some(true),
                Some("192.0.2.7"),
                Some(true),
                Some(false)
            )),
            Ok(TicketState::Closed)
        );
        assert_eq!(
            state(collected(
                Some(true),
                Some("192.0.2.7"),
                Some(false),
                Some(true)
            )),
            Ok(TicketState::Failed)
        );
        assert_eq!(
            state(collected(
                Some(true),
                Some("host: [unclosed"),
                Some(false),
                Some(false)
            )),
            Ok(TicketState::Failed)
        );
        assert_eq!(
            state(collected(Some(true), None, Some(false), Some(false))),
            Ok(TicketState::Failed)
        );
        assert_eq!(
            state(collected(None, None, None, None)),
            Err("unknown ticket 7".to_owned())
        );
    }

    #[test]
    fn collect_answers_are_read_from_the_struct() {
        let answer = Value::Struct(vec![
            ("ready".into(), Value::Bool(true)),
            ("output".into(), Value::Base64(b"192.0.2.7\n".to_vec())),
            ("closed".into(), Value::Bool(false)),
            ("failed".into(), Value::Nil),
        ]);
        assert_eq!(
            Collected::read(&answer),
            Ok(collected(
                Some(true),
                Some("192.0.2.7\n"),
                Some(false),
                None
            ))
        );
        assert!(Collected::read(&Value::Int(1)).is_err());
        assert!(Collected::read(&Value::Struct(vec![])).is_err());
    }

    #[test]
    fn a_bad_url_is_refused_at_once() {
        assert!(matches!(
            ResallocClient::new("not a url"),
            Err(AllocError::Internal(_))
        ));
    }
}
