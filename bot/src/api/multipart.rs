//! Just enough of `multipart/form-data` (RFC 7578) for `POST /api_3/build/create/upload`: the
//! whole body is in memory already (bounded by the route's limit), and python-copr sends a file
//! part `pkgs` then a part `json` with the build's fields.

/// One part of a form.
#[derive(Debug, PartialEq, Eq)]
pub struct Part<'a> {
    pub name: String,
    pub filename: Option<String>,
    pub data: &'a [u8],
}

/// The boundary of a `multipart/form-data` Content-Type.
pub fn boundary(content_type: &str) -> Option<String> {
    let mut params = content_type.split(';');
    let kind = params.next()?.trim();
    if !kind.eq_ignore_ascii_case("multipart/form-data") {
        return None;
    }
    params.find_map(|p| {
        let (key, value) = p.trim().split_once('=')?;
        key.trim()
            .eq_ignore_ascii_case("boundary")
            .then(|| value.trim().trim_matches('"').to_owned())
            .filter(|b| !b.is_empty())
    })
}

/// The parts of `body`; `None` when it is not a well-formed form with this boundary.
pub fn parse<'a>(body: &'a [u8], boundary: &str) -> Option<Vec<Part<'a>>> {
    let delimiter = format!("--{boundary}");
    let mut rest = body.get(find(body, delimiter.as_bytes())? + delimiter.len()..)?;
    let next_delimiter = format!("\r\n--{boundary}");
    let mut parts = Vec::new();
    loop {
        if rest.starts_with(b"--") {
            return Some(parts);
        }
        rest = rest.strip_prefix(b"\r\n")?;
        let head_end = find(rest, b"\r\n\r\n")?;
        let head = std::str::from_utf8(&rest[..head_end]).ok()?;
        let content = &rest[head_end + 4..];
        let end = find(content, next_delimiter.as_bytes())?;
        let (name, filename) = disposition(head)?;
        parts.push(Part {
            name,
            filename,
            data: &content[..end],
        });
        rest = &content[end + next_delimiter.len()..];
    }
}

/// `name` and `filename` of a part's `Content-Disposition: form-data` header.
fn disposition(head: &str) -> Option<(String, Option<String>)> {
    let line = head.split("\r\n").find_map(|l| {
        let (key, value) = l.split_once(':')?;
        key.trim()
            .eq_ignore_ascii_case("content-disposition")
            .then_some(value)
    })?;
    let mut name = None;
    let mut filename = None;
    for param in line.split(';').skip(1) {
        let Some((key, value)) = param.trim().split_once('=') else {
            continue;
        };
        let value = value.trim().trim_matches('"').to_owned();
        match key.trim() {
            "name" => name = Some(value),
            "filename" => filename = Some(value),
            _ => {}
        }
    }
    Some((name?, filename))
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_copr_upload() {
        let content_type = "multipart/form-data; boundary=b0b0";
        let b = boundary(content_type).expect("boundary");
        let body = b"--b0b0\r\n\
            Content-Disposition: form-data; name=\"pkgs\"; filename=\"hello-1.0-1.src.rpm\"\r\n\
            Content-Type: application/x-rpm\r\n\r\n\
            RPM\r\n--b0\r\n\
            --b0b0\r\n\
            Content-Disposition: form-data; name=\"json\"; filename=\"json\"\r\n\
            Content-Type: application/json\r\n\r\n\
            {\"a\": 1}\r\n\
            --b0b0--\r\n";
        let parts = parse(body, &b).expect("parts");
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].name, "pkgs");
        assert_eq!(parts[0].filename.as_deref(), Some("hello-1.0-1.src.rpm"));
        assert_eq!(parts[0].data, b"RPM\r\n--b0");
        assert_eq!(parts[1].name, "json");
        assert_eq!(parts[1].data, b"{\"a\": 1}");
        assert_eq!(boundary("application/json"), None);
        assert_eq!(parse(b"--b0b0\r\nno end", &b), None);
    }
}
