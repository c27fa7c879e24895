//! A stateful fake of a resalloc server (REFERENCE §6), served over XML-RPC on a free port so that
//! ferrocopr's real [`ResallocClient`](ferrocopr_scheduler::resalloc::ResallocClient) talks to it
//! exactly as it talks to resalloc on port 49100.
//!
//! It answers the four methods of resalloc's `resallocserver/api.py` with the same shapes:
//! `takeTicket(tags[, sandbox])` → int; `collectTicket(id)` → `{ready, output, closed, failed}`,
//! `output` as `<base64>` (resalloc stores it as bytes), everything nil for an unknown ticket;
//! `waitTicket(id)` → the output once the ticket has a resource; `closeTicket(id)` → nil, or the
//! fault `no such ticket`. Request bodies are parsed as XML with quick-xml, independently of the
//! client's own codec, so a mistake in one is not mirrored by the other.
//!
//! Instead of pools that start machines, the test hands over a fixed list of resources, all up.
//! Tickets are served oldest first by a free resource whose tags include all the ticket's tags;
//! one that served the same sandbox is preferred (resalloc's +500 reuse). A resource holds one
//! ticket at a time, so it is never shared across sandboxes; once its ticket is closed it comes
//! back as if resalloc had deleted it and started an identical one. [`FakeResalloc::kill`] makes
//! a resource die, which fails its ticket as resalloc's livecheck would.

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine as _;
use quick_xml::events::Event;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::watch;

/// resalloc's fault code for any exception its API raises (Python's `xmlrpc.server` default).
const FAULT_CODE: i64 = 1;

/// A machine in the fake's only pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeResource {
    /// Unique among the fake's resources; names it in [`FakeResalloc::kill`] and in assertions.
    pub name: String,
    pub tags: Vec<String>,
    /// What `cmd_new` printed: an address, or YAML with `host`, `name`, `ssh_port`.
    pub output: String,
}

impl FakeResource {
    pub fn new(name: &str, tags: &[&str], output: &str) -> FakeResource {
        FakeResource {
            name: name.to_owned(),
            tags: tags.iter().map(|tag| (*tag).to_owned()).collect(),
            output: output.to_owned(),
        }
    }
}

/// resalloc's ticket states (`resalloc.helpers.TState`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TicketState {
    Open,
    Failed,
    Closed,
}

#[derive(Debug)]
struct Ticket {
    tags: Vec<String>,
    sandbox: Option<String>,
    state: TicketState,
    /// Index into `Inner::resources`. Like resalloc's `ticket.resource`, it stays once set, even
    /// after the ticket was closed or the resource died.
    resource: Option<usize>,
}

#[derive(Debug)]
struct Slot {
    resource: FakeResource,
    alive: bool,
    /// The open ticket the resource serves now.
    ticket: Option<i64>,
    /// The sandbox of the last ticket served, for reuse.
    sandbox: Option<String>,
}

#[derive(Debug)]
struct Inner {
    resources: Vec<Slot>,
    tickets: BTreeMap<i64, Ticket>,
    next_ticket: i64,
}

struct Shared {
    url: String,
    inner: Mutex<Inner>,
    /// Bumped on every change, so `waitTicket` wakes on events instead of polling.
    changes: watch::Sender<u64>,
}

/// Handle on the running fake; cheap to clone.
#[derive(Clone)]
pub struct FakeResalloc {
    shared: Arc<Shared>,
}

impl FakeResalloc {
    /// Serves the fake on `127.0.0.1:0` in the current runtime, with `resources` all up.
    pub async fn start(resources: Vec<FakeResource>) -> FakeResalloc {
        let mut names: Vec<&str> = resources.iter().map(|r| r.name.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(
            names.len(),
            resources.len(),
            "resource names must be unique"
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the fake resalloc on 127.0.0.1:0");
        let port = listener
            .local_addr()
            .expect("local address of the fake resalloc")
            .port();
        let shared = Arc::new(Shared {
            url: format!("http://127.0.0.1:{port}"),
            inner: Mutex::new(Inner {
                resources: resources
                    .into_iter()
                    .map(|resource| Slot {
                        resource,
                        alive: true,
                        ticket: None,
                        sandbox: None,
                    })
                    .collect(),
                tickets: BTreeMap::new(),
                // resalloc's ids come from a database sequence, starting at 1.
                next_ticket: 1,
            }),
            changes: watch::Sender::new(0),
        });
        // Python's SimpleXMLRPCServer serves these two paths and answers 404 elsewhere.
        let app = Router::new()
            .route("/", post(rpc))
            .route("/RPC2", post(rpc))
            .with_state(shared.clone());
        tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, app).await {
                panic!("the fake resalloc stopped serving: {error}");
            }
        });
        FakeResalloc { shared }
    }

    /// `http://127.0.0.1:<port>`, what ferrocopr is configured with.
    pub fn url(&self) -> &str {
        &self.shared.url
    }

    /// The resource `name` dies: its open ticket turns failed, and it is never given out again.
    pub fn kill(&self, name: &str) {
        self.shared.change(|inner| {
            let slot = inner
                .resources
                .iter_mut()
                .find(|slot| slot.resource.name == name)
                .unwrap_or_else(|| panic!("the fake resalloc has no resource {name:?}"));
            slot.alive = false;
            if let Some(ticket) = slot.ticket.take()
                && let Some(ticket) = inner.tickets.get_mut(&ticket)
            {
                ticket.state = TicketState::Failed;
            }
        });
    }

    /// The name of the resource `ticket` was given, if any (it stays after a close).
    pub fn resource_of(&self, ticket: i64) -> Option<String> {
        let inner = self.shared.lock();
        let index = inner.tickets.get(&ticket)?.resource?;
        Some(inner.resources[index].resource.name.clone())
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A test that panicked while holding the lock is already failing; keep serving.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Applies `change`, hands free resources to waiting tickets, and wakes waiters.
    fn change<T>(&self, change: impl FnOnce(&mut Inner) -> T) -> T {
        let result = {
            let mut inner = self.lock();
            let result = change(&mut inner);
            inner.assign();
            result
        };
        self.changes.send_modify(|n| *n += 1);
        result
    }
}

impl Inner {
    /// resalloc's manager loop, done at once: each waiting ticket, oldest first, gets a free
    /// resource that has all its tags, preferring one that served its sandbox.
    fn assign(&mut self) {
        let waiting: Vec<i64> = self
            .tickets
            .iter()
            .filter(|(_, t)| t.state == TicketState::Open && t.resource.is_none())
            .map(|(id, _)| *id)
            .collect();
        for id in waiting {
            let ticket = &self.tickets[&id];
            let fits = |slot: &&Slot| {
                slot.alive
                    && slot.ticket.is_none()
                    && ticket
                        .tags
                        .iter()
                        .all(|tag| slot.resource.tags.contains(tag))
            };
            let reused = self
                .resources
                .iter()
                .position(|slot| fits(&slot) && slot.sandbox == ticket.sandbox);
            let Some(index) = reused.or_else(|| self.resources.iter().position(|s| fits(&s)))
            else {
                continue;
            };
            let sandbox = ticket.sandbox.clone();
            let slot = &mut self.resources[index];
            slot.ticket = Some(id);
            slot.sandbox = sandbox;
            if let Some(ticket) = self.tickets.get_mut(&id) {
                ticket.resource = Some(index);
            }
        }
    }

    fn take(&mut self, tags: Vec<String>, sandbox: Option<String>) -> i64 {
        let id = self.next_ticket;
        self.next_ticket += 1;
        self.tickets.insert(
            id,
            Ticket {
                tags,
                sandbox,
                state: TicketState::Open,
                resource: None,
            },
        );
        id
    }

    /// `collectTicket`, field for field as `resallocserver/api.py` builds it.
    fn collect(&self, id: i64) -> Reply {
        let Some(ticket) = self.tickets.get(&id) else {
            return Reply::Struct(vec![
                ("ready", Reply::Nil),
                ("output", Reply::Nil),
                ("closed", Reply::Nil),
                ("failed", Reply::Nil),
            ]);
        };
        let output = ticket.resource.map(|index| self.output_of(index));
        Reply::Struct(vec![
            ("ready", Reply::Bool(output.is_some())),
            ("output", output.unwrap_or(Reply::Nil)),
            ("closed", Reply::Bool(ticket.state == TicketState::Closed)),
            ("failed", Reply::Bool(ticket.state == TicketState::Failed)),
        ])
    }

    fn output_of(&self, index: usize) -> Reply {
        Reply::Bytes(self.resources[index].resource.output.clone().into_bytes())
    }

    fn close(&mut self, id: i64) -> Result<Reply, String> {
        let ticket = self
            .tickets
            .get_mut(&id)
            .ok_or_else(|| no_such_ticket(id))?;
        ticket.state = TicketState::Closed;
        if let Some(index) = ticket.resource {
            let slot = &mut self.resources[index];
            if slot.ticket == Some(id) {
                slot.ticket = None;
            }
        }
        Ok(Reply::Nil)
    }
}

/// resalloc's exceptions reach the client as `<class '…'>:message`.
fn no_such_ticket(id: i64) -> String {
    format!("<class 'resallocserver.api.ServerAPIException'>:no such ticket {id}")
}

/// `POST /` (and `/RPC2`): one XML-RPC call. Like Python's server, every answer is 200, faults
/// included.
async fn rpc(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let reply = match std::str::from_utf8(&body)
        .map_err(|e| format!("<class 'UnicodeDecodeError'>:{e}"))
        .and_then(|text| read_call(text).map_err(|e| format!("<class 'ExpatError'>:{e}")))
    {
        Ok((method, params)) => dispatch(&shared, &method, params).await,
        Err(fault) => Err(fault),
    };
    let body = match reply {
        Ok(value) => {
            let mut out = String::from("<?xml version='1.0'?>\n<methodResponse>\n<params>\n");
            out.push_str("<param>\n");
            value.write(&mut out);
            out.push_str("\n</param>\n</params>\n</methodResponse>\n");
            out
        }
        Err(fault) => {
            let mut out = String::from("<?xml version='1.0'?>\n<methodResponse>\n<fault>\n");
            Reply::Struct(vec![
                ("faultCode", Reply::Int(FAULT_CODE)),
                ("faultString", Reply::String(fault)),
            ])
            .write(&mut out);
            out.push_str("\n</fault>\n</methodResponse>\n");
            out
        }
    };
    (StatusCode::OK, [(header::CONTENT_TYPE, "text/xml")], body).into_response()
}

async fn dispatch(shared: &Shared, method: &str, params: Vec<Param>) -> Result<Reply, String> {
    let type_error = |why: &str| format!("<class 'TypeError'>:{method}() {why}");
    match (method, params.as_slice()) {
        ("takeTicket", [tags, rest @ ..]) if rest.len() <= 1 => {
            let Param::Array(tags) = tags else {
                return Err(type_error("takes a list of tags"));
            };
            let tags = tags
                .iter()
                .map(|tag| match tag {
                    Param::String(tag) => Ok(tag.clone()),
                    _ => Err(type_error("takes tags that are strings")),
                })
                .collect::<Result<Vec<_>, _>>()?;
            let sandbox = match rest {
                [] | [Param::Nil] => None,
                [Param::String(sandbox)] => Some(sandbox.clone()),
                _ => return Err(type_error("takes a sandbox that is a string")),
            };
            Ok(Reply::Int(shared.change(|inner| inner.take(tags, sandbox))))
        }
        ("collectTicket", [Param::Int(id)]) => Ok(shared.lock().collect(*id)),
        ("closeTicket", [Param::Int(id)]) => shared.change(|inner| inner.close(*id)),
        ("waitTicket", [Param::Int(id)]) => wait(shared, *id).await,
        ("takeTicket" | "collectTicket" | "closeTicket" | "waitTicket", _) => {
            Err(type_error(&format!("got the wrong arguments: {params:?}")))
        }
        _ => Err(format!(
            "<class 'Exception'>:method \"{method}\" is not supported"
        )),
    }
}

/// `waitTicket`: blocks until the ticket has a resource, then answers its output.
async fn wait(shared: &Shared, id: i64) -> Result<Reply, String> {
    let mut changes = shared.changes.subscribe();
    loop {
        changes.borrow_and_update();
        {
            let inner = shared.lock();
            let ticket = inner.tickets.get(&id).ok_or_else(|| no_such_ticket(id))?;
            if let Some(index) = ticket.resource {
                return Ok(inner.output_of(index));
            }
        }
        if changes.changed().await.is_err() {
            return Err("<class 'Exception'>:the fake resalloc is going away".to_owned());
        }
    }
}

/// A parameter of a call: resalloc's methods take ints, strings, lists of strings and nil.
#[derive(Debug, Clone, PartialEq)]
enum Param {
    Int(i64),
    String(String),
    Array(Vec<Param>),
    Nil,
}

/// An answer, written the way Python's `xmlrpc.client.Marshaller` writes it.
#[derive(Debug)]
enum Reply {
    Int(i64),
    Bool(bool),
    String(String),
    /// Python `bytes`, hence `<base64>`.
    Bytes(Vec<u8>),
    Struct(Vec<(&'static str, Reply)>),
    Nil,
}

impl Reply {
    fn write(&self, out: &mut String) {
        match self {
            Reply::Int(n) => out.push_str(&format!("<value><int>{n}</int></value>")),
            Reply::Bool(b) => out.push_str(&format!(
                "<value><boolean>{}</boolean></value>",
                u8::from(*b)
            )),
            Reply::String(s) => {
                // Python escapes only these three.
                let s = s
                    .replace('&', "&amp;")
                    .replace('<', "&lt;")
                    .replace('>', "&gt;");
                out.push_str(&format!("<value><string>{s}</string></value>"));
            }
            Reply::Bytes(bytes) => {
                let encoded = base64::engine::general_purpose::STANDARD.encode(bytes);
                out.push_str(&format!("<value><base64>\n{encoded}\n</base64></value>"));
            }
            Reply::Struct(members) => {
                out.push_str("<value><struct>\n");
                for (name, value) in members {
                    out.push_str(&format!("<member>\n<name>{name}</name>\n"));
                    value.write(out);
                    out.push_str("\n</member>\n");
                }
                out.push_str("</struct></value>");
            }
            Reply::Nil => out.push_str("<value><nil/></value>"),
        }
    }
}

/// An element of the request, with its children; text is kept only where XML-RPC has some.
#[derive(Debug, Default)]
struct Element {
    name: String,
    children: Vec<Element>,
    text: String,
}

/// The method name and the parameters of a `<methodCall>`.
fn read_call(xml: &str) -> Result<(String, Vec<Param>), String> {
    let call = read_tree(xml)?;
    if call.name != "methodCall" {
        return Err(format!("expected <methodCall>, got <{}>", call.name));
    }
    let method = child(&call, "methodName")?.text.clone();
    let params = match call.children.iter().find(|c| c.name == "params") {
        Some(params) => params
            .children
            .iter()
            .map(|param| {
                if param.name != "param" {
                    return Err(format!("<{}> in <params>", param.name));
                }
                param_of(child(param, "value")?)
            })
            .collect::<Result<_, _>>()?,
        // The spec lets a call without parameters leave <params> out.
        None => Vec::new(),
    };
    Ok((method, params))
}

fn child<'a>(parent: &'a Element, name: &str) -> Result<&'a Element, String> {
    parent
        .children
        .iter()
        .find(|c| c.name == name)
        .ok_or_else(|| format!("<{}> has no <{name}>", parent.name))
}

/// A `<value>` element's parameter.
fn param_of(value: &Element) -> Result<Param, String> {
    let Some(typed) = value.children.first() else {
        // XML-RPC: a value without a type element is a string.
        return Ok(Param::String(value.text.clone()));
    };
    if value.children.len() > 1 || !value.text.trim().is_empty() {
        return Err("a <value> holds more than one value".to_owned());
    }
    let text = typed.text.as_str();
    match typed.name.as_str() {
        "int" | "i4" | "i8" => text
            .trim()
            .parse()
            .map(Param::Int)
            .map_err(|_| format!("<{}>{text}</{}>", typed.name, typed.name)),
        "string" => Ok(Param::String(text.to_owned())),
        "nil" => Ok(Param::Nil),
        "array" => child(typed, "data")?
            .children
            .iter()
            .map(param_of)
            .collect::<Result<_, _>>()
            .map(Param::Array),
        other => Err(format!("the fake resalloc takes no <{other}>")),
    }
}

/// The document's root element, read with quick-xml.
fn read_tree(xml: &str) -> Result<Element, String> {
    let mut reader = quick_xml::Reader::from_str(xml);
    reader.config_mut().expand_empty_elements = true;
    let mut open: Vec<Element> = Vec::new();
    let mut root = None;
    loop {
        let text = match reader.read_event().map_err(|e| e.to_string())? {
            Event::Start(start) => {
                if root.is_some() {
                    return Err("more than one root element".to_owned());
                }
                open.push(Element {
                    name: start.name().as_ref().to_owned(),
                    ..Element::default()
                });
                continue;
            }
            Event::End(_) => {
                let done = open.pop().ok_or("an end tag without a start")?;
                match open.last_mut() {
                    Some(parent) => parent.children.push(done),
                    None => root = Some(done),
                }
                continue;
            }
            Event::Text(text) => text.xml10_content().into_owned(),
            Event::CData(data) => data.xml10_content().into_owned(),
            Event::GeneralRef(reference) => match reference.resolve_char_ref() {
                Ok(Some(c)) => c.to_string(),
                Ok(None) => quick_xml::escape::resolve_predefined_entity(&reference)
                    .ok_or_else(|| format!("an unknown entity &{};", &*reference))?
                    .to_owned(),
                Err(e) => return Err(e.to_string()),
            },
            Event::DocType(_) => return Err("a DOCTYPE in an XML-RPC call".to_owned()),
            Event::Decl(_) | Event::Comment(_) | Event::PI(_) => continue,
            Event::Empty(_) => unreachable!("expand_empty_elements is on"),
            Event::Eof => break,
        };
        match open.last_mut() {
            Some(element) => element.text.push_str(&text),
            None if text.trim().is_empty() => {}
            None => return Err(format!("text outside the root element: {text:?}")),
        }
    }
    if !open.is_empty() {
        return Err("the document ends inside an element".to_owned());
    }
    root.ok_or_else(|| "no root element".to_owned())
}
