use super::*;
use crate::item::PairedItem;
use serde_json::json;

fn sandbox() -> Sandbox {
    sandbox_with(SandboxLimits::default())
}

fn sandbox_with(limits: SandboxLimits) -> Sandbox {
    let globals = ExpressionGlobals {
        workflow_id: Some("wf1".into()),
        workflow_name: "Invoices".into(),
        execution_id: "ex1".into(),
        execution_mode: "manual".into(),
        now_ms: 1_700_000_000_000,
        ..Default::default()
    };
    Sandbox::new(limits, &globals, Arc::new(AtomicBool::new(false))).expect("sandbox starts")
}

fn items(values: &[Value]) -> Arc<Vec<Item>> {
    Arc::new(values.iter().cloned().map(Item::new).collect())
}

fn eval(sb: &mut Sandbox, src: &str, index: usize) -> Result<Value, JsError> {
    sb.evaluate_str(src, index)
}

#[test]
fn item_globals_follow_the_current_item() {
    let mut sb = sandbox();
    sb.begin_node("Set", 0, items(&[json!({"a": 1}), json!({"a": 2})]), vec![]);
    assert_eq!(eval(&mut sb, "={{ $json.a * 10 }}", 0), Ok(json!(10)));
    assert_eq!(eval(&mut sb, "={{ $json.a * 10 }}", 1), Ok(json!(20)));
    assert_eq!(eval(&mut sb, "={{ $itemIndex }}", 1), Ok(json!(1)));
    assert_eq!(eval(&mut sb, "={{ $input.all().length }}", 0), Ok(json!(2)));
    assert_eq!(
        eval(&mut sb, "={{ $input.last().json.a }}", 0),
        Ok(json!(2))
    );
    assert_eq!(eval(&mut sb, "={{ $input.item.json.a }}", 1), Ok(json!(2)));
    assert_eq!(
        eval(&mut sb, "a={{ $json.a }} b={{ $json.missing }}", 0),
        Ok(json!("a=1 b="))
    );
    assert_eq!(
        eval(&mut sb, "={{ $workflow.name }}/{{ $execution.id }}", 0),
        Ok(json!("Invoices/ex1"))
    );
    assert_eq!(
        eval(&mut sb, "={{ $now.toISO() }}", 0),
        Ok(json!("2023-11-14T22:13:20.000Z"))
    );
    assert_eq!(
        eval(&mut sb, "={{ $today }}", 0),
        Ok(json!("2023-11-14T00:00:00.000Z"))
    );
    assert_eq!(eval(&mut sb, "plain {{ no", 0), Ok(json!("plain {{ no")));
}

#[test]
fn node_references_resolve_paired_items() {
    let mut sb = sandbox();
    sb.add_node("Source", json!({"p": 1}));
    sb.add_node("Mid", json!({}));
    sb.add_node("Here", json!({}));
    sb.record_run(
        "Source",
        RunView {
            sources: vec![],
            outputs: vec![Arc::new(vec![
                Item::new(json!({"id": "a"})),
                Item::new(json!({"id": "b"})),
            ])],
        },
    );
    // Mid reversed the order: its item 0 came from Source item 1.
    let mid_out = vec![
        Item {
            paired_item: Some(PairedItem::item(1)),
            ..Item::new(json!({"n": 0}))
        },
        Item {
            paired_item: Some(PairedItem::item(0)),
            ..Item::new(json!({"n": 1}))
        },
    ];
    sb.record_run(
        "Mid",
        RunView {
            sources: vec![Some(SourceRef {
                node: "Source".into(),
                output: 0,
                run: 0,
            })],
            outputs: vec![Arc::new(mid_out.clone())],
        },
    );
    sb.begin_node(
        "Here",
        0,
        Arc::new(mid_out),
        vec![Some(SourceRef {
            node: "Mid".into(),
            output: 0,
            run: 0,
        })],
    );
    assert_eq!(
        eval(&mut sb, "={{ $('Source').item.json.id }}", 0),
        Ok(json!("b"))
    );
    assert_eq!(
        eval(&mut sb, "={{ $('Source').item.json.id }}", 1),
        Ok(json!("a"))
    );
    assert_eq!(
        eval(&mut sb, "={{ $node['Source'].json.id }}", 0),
        Ok(json!("b"))
    );
    assert_eq!(
        eval(
            &mut sb,
            "={{ $('Source').all().map(i => i.json.id).join() }}",
            0
        ),
        Ok(json!("a,b"))
    );
    assert_eq!(
        eval(&mut sb, "={{ $('Source').first().json.id }}", 0),
        Ok(json!("a"))
    );
    assert_eq!(
        eval(&mut sb, "={{ $('Source').params.p }}", 0),
        Ok(json!(1))
    );
    let err = eval(&mut sb, "={{ $('Nope').item }}", 0).expect_err("unknown node");
    assert!(err.to_string().contains("'Nope' doesn't exist"), "{err}");
}

#[test]
fn endless_loop_is_stopped_by_the_time_limit() {
    let mut sb = sandbox_with(SandboxLimits {
        expression_timeout: Duration::from_millis(200),
        ..Default::default()
    });
    sb.begin_node("X", 0, items(&[json!({})]), vec![]);
    let started = Instant::now();
    let err = eval(&mut sb, "={{ (() => { while (true) {} })() }}", 0).expect_err("must stop");
    assert_eq!(err, JsError::Timeout(Duration::from_millis(200)));
    assert!(started.elapsed() < Duration::from_secs(5));
    // The sandbox keeps working afterwards.
    assert_eq!(eval(&mut sb, "={{ 1 + 1 }}", 0), Ok(json!(2)));
}

#[test]
fn unbounded_allocation_is_stopped_by_the_memory_limit() {
    let mut sb = sandbox_with(SandboxLimits {
        memory_bytes: 32 * 1024 * 1024,
        ..Default::default()
    });
    sb.begin_node("X", 0, items(&[json!({})]), vec![]);
    let err = eval(
        &mut sb,
        "={{ (() => { const a = []; while (true) a.push('x'.repeat(1000000) + a.length); })() }}",
        0,
    )
    .expect_err("must stop");
    assert_eq!(err, JsError::OutOfMemory(32));
    assert_eq!(eval(&mut sb, "={{ [1,2,3].length }}", 0), Ok(json!(3)));
}

#[test]
fn sandbox_has_no_io() {
    let mut sb = sandbox();
    sb.begin_node("X", 0, items(&[json!({})]), vec![]);
    let probe = "={{ [typeof require, typeof process, typeof fetch, typeof XMLHttpRequest, typeof std, typeof os, typeof Deno, typeof module].join() }}";
    assert_eq!(
        eval(&mut sb, probe, 0),
        Ok(json!(
            "undefined,undefined,undefined,undefined,undefined,undefined,undefined,undefined"
        ))
    );
    assert!(eval(&mut sb, "={{ require('fs') }}", 0).is_err());
    assert!(sb
        .run_code(
            "const m = await import('fs'); return [{json: {x: 1}}];",
            None
        )
        .is_err());
}

#[test]
fn syntax_errors_are_reported() {
    let mut sb = sandbox();
    sb.begin_node("X", 0, items(&[json!({})]), vec![]);
    let err = eval(&mut sb, "={{ $json. }}", 0).expect_err("syntax");
    assert!(matches!(err, JsError::Syntax(_)), "{err:?}");
}

#[test]
fn code_runs_for_all_items_and_per_item() {
    let mut sb = sandbox();
    sb.begin_node(
        "Code",
        0,
        items(&[json!({"a": 1}), json!({"a": 2})]),
        vec![],
    );
    let out = sb
        .run_code("return items.map(i => ({json: {b: i.json.a + 1}}));", None)
        .expect("runs");
    assert_eq!(out, json!([{"json": {"b": 2}}, {"json": {"b": 3}}]));
    let out = sb
        .run_code(
            "return {json: {double: $json.a * 2, idx: $itemIndex}};",
            Some(1),
        )
        .expect("runs");
    assert_eq!(out, json!({"json": {"double": 4, "idx": 1}}));
    let out = sb
        .run_code(
            "const x = await Promise.resolve(5); return [{json: {x}}];",
            None,
        )
        .expect("async runs");
    assert_eq!(out, json!([{"json": {"x": 5}}]));
}

#[test]
fn deep_recursion_is_an_error_not_a_crash() {
    let mut sb = sandbox();
    sb.begin_node("X", 0, items(&[json!({})]), vec![]);
    let err = eval(
        &mut sb,
        "={{ (function f(n) { return f(n + 1) + 1; })(0) }}",
        0,
    )
    .expect_err("overflows");
    assert!(err.to_string().contains("stack"), "{err}");
    assert_eq!(eval(&mut sb, "={{ 2 * 21 }}", 0), Ok(json!(42)));
}

#[test]
fn one_json_conversion_serves_many_expressions_of_an_item() {
    let mut sb = sandbox();
    sb.begin_node("X", 0, items(&[json!({"a": 1})]), vec![]);
    // Mutating the cached $json is visible to the next expression of the same item only.
    assert_eq!(
        eval(&mut sb, "={{ ($json.a = 5, $json.a) }}", 0),
        Ok(json!(5))
    );
    assert_eq!(eval(&mut sb, "={{ $json.a }}", 0), Ok(json!(5)));
    sb.begin_node("Y", 0, items(&[json!({"a": 1})]), vec![]);
    assert_eq!(eval(&mut sb, "={{ $json.a }}", 0), Ok(json!(1)));
}

#[test]
fn code_awaiting_forever_fails_instead_of_hanging() {
    let mut sb = sandbox_with(SandboxLimits {
        code_timeout: Duration::from_millis(300),
        ..Default::default()
    });
    sb.begin_node("X", 0, items(&[json!({})]), vec![]);
    let started = Instant::now();
    let result = sb.run_code("await new Promise(() => {}); return [];", None);
    let err = result.expect_err("never settles");
    assert!(err.to_string().contains("never settles"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(5));
    drop(sb);
}
