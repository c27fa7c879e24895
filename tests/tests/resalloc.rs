//! ferrocopr's resalloc client (`ferrocopr_scheduler::resalloc`) against a fake resalloc served
//! over real XML-RPC: a ticket's life from take to close, tag matching, a resource that dies, an
//! unknown ticket, and a server that is not there. The fake also answers the exact bytes that
//! resalloc's Python client sends, so it cannot drift into a dialect only our client speaks.

use ferrocopr_scheduler::alloc::{AllocError, Allocator, Resource, TicketState};
use ferrocopr_scheduler::resalloc::ResallocClient;
use ferrocopr_tests::fake_resalloc::{FakeResalloc, FakeResource};
use std::time::Duration;

/// Tags as Copr puts them on every builder ticket.
fn builder_tags(arch: &str) -> Vec<String> {
    vec!["copr_builder".to_owned(), format!("arch_{arch}")]
}

fn client(resalloc: &FakeResalloc) -> ResallocClient {
    ResallocClient::new(resalloc.url()).expect("a client for the fake resalloc")
}

async fn collect(client: &ResallocClient, ticket: i64) -> TicketState {
    client
        .collect(ticket)
        .await
        .unwrap_or_else(|e| panic!("collect ticket {ticket}: {e}"))
}

#[tokio::test]
async fn a_ticket_waits_for_the_only_fitting_resource_then_gets_it() {
    let resalloc = FakeResalloc::start(vec![FakeResource::new(
        "x86-1",
        &["copr_builder", "arch_x86_64"],
        "host: 127.0.0.1\nname: x86-1\nssh_port: 2222\n",
    )])
    .await;
    let client = client(&resalloc);
    let x86_1 = TicketState::Ready(Resource {
        host: "127.0.0.1".to_owned(),
        name: Some("x86-1".to_owned()),
        ssh_port: 2222,
    });

    let alice = client
        .take(&builder_tags("x86_64"), "alice/foo--alice")
        .await
        .expect("take alice's ticket");
    let bob = client
        .take(&builder_tags("x86_64"), "bob/bar--bob")
        .await
        .expect("take bob's ticket");
    assert_ne!(alice, bob);
    assert_eq!(collect(&client, alice).await, x86_1);
    // Another sandbox never shares a taken resource.
    assert_eq!(collect(&client, bob).await, TicketState::Waiting);
    assert_eq!(resalloc.resource_of(bob), None);

    client.close(alice).await.expect("close alice's ticket");
    assert_eq!(collect(&client, alice).await, TicketState::Closed);
    assert_eq!(collect(&client, bob).await, x86_1);
    assert_eq!(resalloc.resource_of(bob).as_deref(), Some("x86-1"));

    client.close(bob).await.expect("close bob's ticket");
    client
        .close(bob)
        .await
        .expect("closing a closed ticket is fine");
    assert_eq!(collect(&client, bob).await, TicketState::Closed);
}

#[tokio::test]
async fn a_resource_serves_tickets_whose_tags_it_has_all_of() {
    let resalloc = FakeResalloc::start(vec![
        FakeResource::new("x86-1", &["copr_builder", "arch_x86_64"], "2001:db8::1\n"),
        // Extra tags on the resource are fine.
        FakeResource::new(
            "aarch64-1",
            &["copr_builder", "arch_aarch64", "hypervisor_aws"],
            "192.0.2.8",
        ),
    ])
    .await;
    let client = client(&resalloc);

    let first = client
        .take(&builder_tags("aarch64"), "alice/foo--alice")
        .await
        .expect("take");
    let second = client
        .take(&builder_tags("aarch64"), "alice/foo--alice")
        .await
        .expect("take");
    let x86 = client
        .take(&builder_tags("x86_64"), "alice/foo--alice")
        .await
        .expect("take");
    let nowhere = client
        .take(&builder_tags("s390x"), "alice/foo--alice")
        .await
        .expect("take");

    let TicketState::Ready(resource) = collect(&client, first).await else {
        panic!("the aarch64 ticket got no resource");
    };
    assert_eq!(resource.host, "192.0.2.8");
    assert_eq!(resource.ssh_port, 22);
    assert_eq!(resalloc.resource_of(first).as_deref(), Some("aarch64-1"));
    // The x86_64 machine was free all along, but an aarch64 ticket never gets it.
    assert_eq!(collect(&client, second).await, TicketState::Waiting);
    assert_eq!(resalloc.resource_of(second), None);
    let TicketState::Ready(resource) = collect(&client, x86).await else {
        panic!("the x86_64 ticket got no resource");
    };
    assert_eq!(resource.host, "2001:db8::1");
    assert_eq!(resalloc.resource_of(x86).as_deref(), Some("x86-1"));
    assert_eq!(collect(&client, nowhere).await, TicketState::Waiting);

    client.close(first).await.expect("close");
    assert_eq!(resalloc.resource_of(second).as_deref(), Some("aarch64-1"));
    assert!(matches!(
        collect(&client, second).await,
        TicketState::Ready(Resource { ref host, .. }) if host == "192.0.2.8"
    ));
    for ticket in [second, x86, nowhere] {
        client.close(ticket).await.expect("close");
    }
}

#[tokio::test]
async fn a_ticket_fails_when_its_resource_dies_or_is_unusable() {
    let resalloc = FakeResalloc::start(vec![
        FakeResource::new("x86-1", &["copr_builder", "arch_x86_64"], "192.0.2.7"),
        // cmd_new printed something that is neither an address nor the YAML we read.
        FakeResource::new(
            "broken",
            &["copr_builder", "arch_ppc64le"],
            "host: [192.0.2.9\n",
        ),
    ])
    .await;
    let client = client(&resalloc);

    let ticket = client
        .take(&builder_tags("x86_64"), "alice/foo--alice")
        .await
        .expect("take");
    assert!(matches!(
        collect(&client, ticket).await,
        TicketState::Ready(_)
    ));
    resalloc.kill("x86-1");
    assert_eq!(collect(&client, ticket).await, TicketState::Failed);
    client.close(ticket).await.expect("close the failed ticket");
    assert_eq!(collect(&client, ticket).await, TicketState::Closed);
    // The dead machine is not given out again.
    let next = client
        .take(&builder_tags("x86_64"), "alice/foo--alice")
        .await
        .expect("take");
    assert_eq!(collect(&client, next).await, TicketState::Waiting);

    let unusable = client
        .take(&builder_tags("ppc64le"), "alice/foo--alice")
        .await
        .expect("take");
    assert_eq!(resalloc.resource_of(unusable).as_deref(), Some("broken"));
    assert_eq!(collect(&client, unusable).await, TicketState::Failed);
}

#[tokio::test]
async fn an_unknown_ticket_is_told_apart() {
    let resalloc = FakeResalloc::start(vec![]).await;
    let client = client(&resalloc);
    // resalloc answers collectTicket with nils and closeTicket with a fault: both are the same
    // error for the scheduler.
    assert!(matches!(
        client.collect(4242).await,
        Err(AllocError::UnknownTicket(4242))
    ));
    assert!(matches!(
        client.close(4242).await,
        Err(AllocError::UnknownTicket(4242))
    ));
}

#[tokio::test]
async fn a_server_that_is_not_there_is_an_internal_error() {
    // A port that was just free: nothing listens on it.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
        listener.local_addr().expect("its address").port()
    };
    let client = ResallocClient::new(&format!("http://127.0.0.1:{port}")).expect("client");
    match client
        .take(&builder_tags("x86_64"), "alice/foo--alice")
        .await
    {
        Err(AllocError::Internal(why)) => {
            assert!(
                why.contains("takeTicket") && why.contains("refused"),
                "{why}"
            );
        }
        other => panic!("expected an internal error, got {other:?}"),
    }
    assert!(matches!(
        client.collect(1).await,
        Err(AllocError::Internal(_))
    ));
    assert!(matches!(
        client.close(1).await,
        Err(AllocError::Internal(_))
    ));

    // Something answers, but it is not resalloc's XML-RPC path.
    let resalloc = FakeResalloc::start(vec![]).await;
    let client = ResallocClient::new(&format!("{}/not-rpc", resalloc.url())).expect("client");
    match client.collect(1).await {
        Err(AllocError::Internal(why)) => assert!(why.contains("HTTP status 404"), "{why}"),
        other => panic!("expected an internal error, got {other:?}"),
    }
}

/// The bytes Python's `xmlrpc.client` sends for resalloc's `Connection.newTicket`.
const PYTHON_TAKE_TICKET: &str = "<?xml version='1.0'?>\n<methodCall>\n<methodName>takeTicket\
    </methodName>\n<params>\n<param>\n<value><array><data>\n<value><string>copr_builder</string>\
    </value>\n<value><string>arch_x86_64</string></value>\n</data></array></value>\n</param>\n\
    <param>\n<value><string>alice/foo--alice</string></value>\n</param>\n</params>\n\
    </methodCall>\n";

fn python_call(method: &str, ticket: i64) -> String {
    format!(
        "<?xml version='1.0'?>\n<methodCall>\n<methodName>{method}</methodName>\n<params>\n\
         <param>\n<value><int>{ticket}</int></value>\n</param>\n</params>\n</methodCall>\n"
    )
}

async fn post_xml(url: &str, body: &str) -> String {
    let headers = vec![("Content-Type".to_owned(), "text/xml".to_owned())];
    let response = ferrocopr_tests::http::post(url, headers, body.as_bytes().to_vec()).await;
    assert_eq!(response.status, 200, "{}", response.text());
    response.text()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_fake_answers_resallocs_own_client() {
    let resalloc = FakeResalloc::start(vec![FakeResource::new(
        "x86-1",
        &["copr_builder", "arch_x86_64"],
        "192.0.2.7\n",
    )])
    .await;
    let url = format!("{}/RPC2", resalloc.url());

    let first = post_xml(&url, PYTHON_TAKE_TICKET).await;
    assert!(first.contains("<value><int>1</int></value>"), "{first}");
    let second = post_xml(&url, PYTHON_TAKE_TICKET).await;
    assert!(second.contains("<value><int>2</int></value>"), "{second}");

    // waitTicket blocks until ticket 2 gets the machine, which happens when 1 is closed.
    let waiting = tokio::spawn({
        let url = url.clone();
        async move { post_xml(&url, &python_call("waitTicket", 2)).await }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        !waiting.is_finished(),
        "waitTicket answered before a resource was free"
    );
    let closed = post_xml(&url, &python_call("closeTicket", 1)).await;
    assert!(closed.contains("<value><nil/></value>"), "{closed}");
    let output = tokio::time::timeout(Duration::from_secs(10), waiting)
        .await
        .expect("waitTicket answers once the resource is free")
        .expect("the waiting request");
    // resalloc keeps cmd_new's output as bytes: base64 on the wire ("192.0.2.7\n").
    assert!(
        output.contains("<base64>\nMTkyLjAuMi43Cg==\n</base64>"),
        "{output}"
    );

    let unknown = post_xml(&url, &python_call("closeTicket", 99)).await;
    assert!(
        unknown.contains("<fault>") && unknown.contains("no such ticket 99"),
        "{unknown}"
    );
    let not_xml = post_xml(&url, "takeTicket(['copr_builder'])").await;
    assert!(not_xml.contains("<fault>"), "{not_xml}");
}
