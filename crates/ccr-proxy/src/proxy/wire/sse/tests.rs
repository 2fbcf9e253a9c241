use proptest::prelude::*;

use super::*;

/// Events as owned `(event, data)` text, for comparing.
type Owned = Vec<(String, String)>;

fn own(e: SseEvent<'_>) -> (String, String) {
    (
        String::from_utf8(e.event.to_vec()).unwrap(),
        String::from_utf8(e.data.to_vec()).expect("a character survives any cut"),
    )
}

/// Decode `chunks` in order; the events, and what `finish` found (if anything).
fn decode(
    decoder: &mut SseDecoder,
    chunks: &[&[u8]],
) -> Result<(Owned, Option<(String, String)>), FrameError> {
    let mut events = Vec::new();
    for chunk in chunks {
        let mut input = *chunk;
        while let Some(event) = decoder.next(&mut input) {
            events.push(own(event?));
        }
        assert!(input.is_empty(), "each chunk is used up");
    }
    let rest = decoder.finish()?.map(own);
    Ok((events, rest))
}

fn pair(event: &str, data: &str) -> (String, String) {
    (event.to_owned(), data.to_owned())
}

/// Multi-byte characters (2, 3 and 4 bytes), every line ending, a comment, a two-line
/// event and `[DONE]`.
const FIXTURE: &str = "\u{FEFF}: keep-alive\r\n\
    event: content_block_delta\n\
    data: {\"text\":\"héllo € 𝄞 日本\"}\n\n\
    data: first line ü\r\ndata: second 🎉\r\n\r\n\
    :ping\r\r\
    event: error\rdata: {\"error\":{\"message\":\"ça\"}}\r\r\
    data: [DONE]\n\n";

fn fixture_events() -> Owned {
    vec![
        pair("content_block_delta", "{\"text\":\"héllo € 𝄞 日本\"}"),
        pair("", "first line ü\nsecond 🎉"),
        pair("error", "{\"error\":{\"message\":\"ça\"}}"),
        pair("", "[DONE]"),
    ]
}

#[test]
fn the_fixture_decodes_whole() {
    let (events, rest) = decode(&mut SseDecoder::default(), &[FIXTURE.as_bytes()]).unwrap();
    assert_eq!(events, fixture_events());
    assert_eq!(rest, None);
}

#[test]
fn a_cut_at_every_byte_gives_the_same_events() {
    let bytes = FIXTURE.as_bytes();
    for cut in 0..=bytes.len() {
        let (a, b) = bytes.split_at(cut);
        let (events, rest) = decode(&mut SseDecoder::default(), &[a, b]).unwrap();
        assert_eq!(events, fixture_events(), "cut at {cut}");
        assert_eq!(rest, None, "cut at {cut}");
    }
}

proptest! {
    /// Any number of cuts anywhere (inside characters, between CR and LF): same events.
    #[test]
    fn any_cuts_give_the_same_events(mut cuts in proptest::collection::vec(0..FIXTURE.len(), 0..12)) {
        cuts.sort_unstable();
        let bytes = FIXTURE.as_bytes();
        let mut chunks = Vec::new();
        let mut from = 0;
        for cut in cuts {
            chunks.push(&bytes[from..cut]);
            from = cut;
        }
        chunks.push(&bytes[from..]);
        let (events, rest) = decode(&mut SseDecoder::default(), &chunks).unwrap();
        prop_assert_eq!(events, fixture_events());
        prop_assert_eq!(rest, None);
    }
}

#[test]
fn comments_ids_and_unknown_fields_are_skipped_and_names_reset_per_event() {
    let input = b": ping\nid: 7\nretry: 10\nfoo: bar\nevent: x\ndata: 1\n\ndata: 2\n\nevent: lonely\n\ndata\n\n";
    let (events, _) = decode(&mut SseDecoder::default(), &[input]).unwrap();
    // A name without data dispatches nothing and is forgotten; `data` alone is an
    // event with empty data.
    assert_eq!(events, [pair("x", "1"), pair("", "2"), pair("", "")]);
    let (events, _) = decode(
        &mut SseDecoder::default(),
        &[b"data:no space\n\ndata:  two\n\n"],
    )
    .unwrap();
    assert_eq!(
        events,
        [pair("", "no space"), pair("", " two")],
        "one space is dropped"
    );
}

#[test]
fn done_and_names_are_recognised() {
    let mut d = SseDecoder::default();
    let mut input = &b"event: error \ndata:  [DONE] \n\n"[..];
    let event = d.next(&mut input).unwrap().unwrap();
    assert!(event.is_done());
    assert!(event.is("error"));
    assert!(!event.is("err"));
}

#[test]
fn a_stream_ending_mid_event_leaves_it_to_finish() {
    let mut d = SseDecoder::default();
    let (events, rest) =
        decode(&mut d, &[b"data: a\n\nevent: last\ndata: {\"x\":", b"1}"]).unwrap();
    assert_eq!(events, [pair("", "a")]);
    assert_eq!(rest, Some(pair("last", "{\"x\":1}")));
    // Terminated lines without the blank line: the same.
    let (_, rest) = decode(&mut SseDecoder::default(), &[b"data: [DONE]\n"]).unwrap();
    assert_eq!(rest, Some(pair("", "[DONE]")));
    // Nothing pending: nothing.
    let (_, rest) = decode(&mut SseDecoder::default(), &[b"data: a\n\n: bye"]).unwrap();
    assert_eq!(rest, None);
}

#[test]
fn an_oversize_line_is_a_typed_error_naming_the_limit() {
    let mut d = SseDecoder::new(16, 64);
    let mut input = &b"data: 0123456789"[..];
    assert!(d.next(&mut input).is_none(), "16 bytes: still within");
    let mut input = &b"a"[..];
    let err = d.next(&mut input).unwrap().unwrap_err();
    assert_eq!(err, FrameError::LineTooLong { limit: 16 });
    assert_eq!(err.kind(), "line_too_long");
    assert!(
        d.next(&mut &b"\n\ndata: x\n\n"[..]).is_none(),
        "nothing after an error"
    );
}

#[test]
fn an_oversize_event_is_a_typed_error_naming_the_limit() {
    // Each line is within the line limit; their join is not.
    let mut d = SseDecoder::new(16, 20);
    let input = b"data: 0123456789\ndata: 0123456789\n\n";
    let err = decode(&mut d, &[input]).unwrap_err();
    assert_eq!(err, FrameError::EventTooLarge { limit: 20 });
    assert_eq!(err.to_string(), "one stream event larger than 20 bytes");
    // The same cut in two, and unterminated at the end.
    let err = decode(
        &mut SseDecoder::new(16, 20),
        &[b"data: 0123456789\n", b"data: 0123456789\n"],
    )
    .unwrap_err();
    assert_eq!(err, FrameError::EventTooLarge { limit: 20 });
    let err = decode(
        &mut SseDecoder::new(16, 20),
        &[b"data: 0123456789\ndata: 0123456789"],
    )
    .unwrap_err();
    assert_eq!(err, FrameError::EventTooLarge { limit: 20 });
}

#[test]
fn a_one_line_event_inside_one_chunk_is_not_copied() {
    let mut d = SseDecoder::default();
    let chunk = b"event: e\ndata: {\"a\":1}\n\n";
    let mut input = &chunk[..];
    let event = d.next(&mut input).unwrap().unwrap();
    let range = chunk.as_ptr_range();
    assert!(
        range.contains(&event.data.as_ptr()),
        "borrowed from the input"
    );
    assert_eq!(event.data, b"{\"a\":1}");
}
