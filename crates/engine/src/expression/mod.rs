//! Expressions and Code: JavaScript evaluated in an embedded QuickJS (via `rquickjs`).
//!
//! Owns the sandbox: one runtime and context per execution, with a memory limit, a stack limit
//! and an interrupt handler enforcing a time limit and cancellation. The context has the
//! language's built-ins only: no `require`, no module loader, no file system, environment or
//! network objects. Data reaches JavaScript lazily through a few host functions, and an item's
//! JSON is converted at most once per item (see `prelude.js`).
//!
//! Globals: `$json`, `$binary`, `$input.item/all()/first()/last()`,
//! `$('Node').item/all()/first()/last()/params/isExecuted`, `$node["Node"].json/binary/parameter`,
//! `$now` and `$today`, `$workflow` `{id,name,active}`, `$execution` `{id,mode}`, `$vars`,
//! `$itemIndex`, `$runIndex`. `$now` is a `Date` subclass fixed at the start of the execution
//! whose `toString()`/`toJSON()` give ISO 8601 in UTC and which has Luxon-like `toISO()`,
//! `toMillis()`, `plus(ms)`, `minus(ms)`; `$today` is the same at 00:00 UTC.
//!
//! It does not know nodes or the executor: the executor tells it which node and item are
//! current and which node runs exist ([`DataView`]).

mod template;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rquickjs::{Context, Ctx, Exception, Function, Object, Runtime};
use serde_json::{json, Value};

pub use template::{parse_template, Expression, ParamTree};

use crate::item::Item;
use crate::run_data::SourceRef;

/// Resource limits of the sandbox.
#[derive(Debug, Clone)]
pub struct SandboxLimits {
    /// Memory for all JavaScript of one execution.
    pub memory_bytes: usize,
    /// Wall time for one parameter-tree evaluation (all expressions of one item of one node).
    pub expression_timeout: Duration,
    /// Wall time for one Code node run (or one item in per-item mode).
    pub code_timeout: Duration,
}

impl Default for SandboxLimits {
    fn default() -> Self {
        SandboxLimits {
            memory_bytes: 256 * 1024 * 1024,
            expression_timeout: Duration::from_secs(5),
            code_timeout: Duration::from_secs(60),
        }
    }
}

/// Why JavaScript failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum JsError {
    #[error("{0}")]
    Thrown(String),
    #[error("syntax error: {0}")]
    Syntax(String),
    #[error("stopped: took longer than the time limit of {0:?} (an endless loop?)")]
    Timeout(Duration),
    #[error("stopped: used more than the memory limit of {0} MiB")]
    OutOfMemory(usize),
    #[error("stopped: the execution was cancelled")]
    Cancelled,
    #[error("could not start the JavaScript sandbox: {0}")]
    Setup(String),
}

/// An expression that failed, with what a person needs to find it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("expression in parameter '{parameter}' (item {item_index}) failed: {error}\n  expression: {expression}")]
pub struct ExpressionError {
    pub parameter: String,
    pub item_index: usize,
    pub expression: String,
    pub error: JsError,
}

/// Execution-wide values visible to expressions.
#[derive(Debug, Clone, Default)]
pub struct ExpressionGlobals {
    pub workflow_id: Option<String>,
    pub workflow_name: String,
    pub workflow_active: bool,
    pub execution_id: String,
    pub execution_mode: String,
    pub vars: serde_json::Map<String, Value>,
    /// Milliseconds since the Unix epoch for `$now`.
    pub now_ms: i64,
}

/// One completed run of a node, as expressions see it.
#[derive(Debug, Clone)]
pub struct RunView {
    pub sources: Vec<Option<SourceRef>>,
    pub outputs: Vec<Arc<Vec<Item>>>,
}

/// What expressions can read: completed node runs and the current position.
#[derive(Debug, Default)]
pub struct DataView {
    runs: HashMap<String, Vec<RunView>>,
    params: HashMap<String, Arc<Value>>,
    current_node: String,
    current_input: Arc<Vec<Item>>,
    current_sources: Vec<Option<SourceRef>>,
    current_item: usize,
}

impl DataView {
    fn current(&self) -> Option<&Item> {
        self.current_input.get(self.current_item)
    }

    fn node_output(&self, name: &str) -> Result<&[Item], String> {
        if !self.params.contains_key(name) {
            return Err(format!(
                "referenced node '{name}' doesn't exist in this workflow"
            ));
        }
        let run = self
            .runs
            .get(name)
            .and_then(|r| r.last())
            .ok_or_else(|| format!("referenced node '{name}' hasn't been executed yet"))?;
        Ok(run.outputs.first().map(|o| o.as_slice()).unwrap_or(&[]))
    }

    /// Follows `pairedItem` links from the current item back to `target`'s output.
    fn paired(&self, target: &str) -> Result<&Item, String> {
        if target == self.current_node {
            return self
                .current()
                .ok_or_else(|| format!("no current item in node '{target}'"));
        }
        let mut sources: &[Option<SourceRef>] = &self.current_sources;
        let mut item_index = self.current_item;
        let mut input = 0usize;
        for _ in 0..1000 {
            let Some(Some(src)) = sources.get(input) else {
                break;
            };
            let Some(run) = self.runs.get(&src.node).and_then(|r| r.get(src.run)) else {
                break;
            };
            let Some(item) = run.outputs.get(src.output).and_then(|o| o.get(item_index)) else {
                break;
            };
            if src.node == target {
                return Ok(item);
            }
            let Some(link) = item.paired_item.as_ref().and_then(|p| p.first()) else {
                break;
            };
            sources = &run.sources;
            item_index = link.item;
            input = link.input;
        }
        // Without pairing information, fall back to the same index, as older n8n did.
        let out = self.node_output(target)?;
        out.get(self.current_item)
            .or_else(|| out.first())
            .ok_or_else(|| {
                format!("can't get the matching item from node '{target}': it produced no items")
            })
    }
}

fn lock(state: &Mutex<DataView>) -> MutexGuard<'_, DataView> {
    state
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

const STOP_NONE: u8 = 0;
const STOP_TIMEOUT: u8 = 1;
const STOP_CANCEL: u8 = 2;

/// The JavaScript sandbox of one execution.
pub struct Sandbox {
    runtime: Runtime,
    context: Context,
    state: Arc<Mutex<DataView>>,
    compiled: HashMap<String, i32>,
    limits: SandboxLimits,
    base: Instant,
    deadline_ms: Arc<AtomicU64>,
    stop_reason: Arc<AtomicU8>,
    item_gen: u64,
    input_gen: u64,
    data_gen: u64,
    run_index: usize,
}

impl std::fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sandbox")
            .field("limits", &self.limits)
            .finish()
    }
}

impl Sandbox {
    pub fn new(
        limits: SandboxLimits,
        globals: &ExpressionGlobals,
        cancelled: Arc<AtomicBool>,
    ) -> Result<Self, JsError> {
        let setup = |e: rquickjs::Error| JsError::Setup(e.to_string());
        let runtime = Runtime::new().map_err(setup)?;
        runtime.set_memory_limit(limits.memory_bytes);
        runtime.set_max_stack_size(512 * 1024);
        let base = Instant::now();
        let deadline_ms = Arc::new(AtomicU64::new(u64::MAX));
        let stop_reason = Arc::new(AtomicU8::new(STOP_NONE));
        {
            let deadline_ms = deadline_ms.clone();
            let stop_reason = stop_reason.clone();
            runtime.set_interrupt_handler(Some(Box::new(move || {
                if cancelled.load(Ordering::Relaxed) {
                    stop_reason.store(STOP_CANCEL, Ordering::Relaxed);
                    return true;
                }
                if base.elapsed().as_millis() as u64 > deadline_ms.load(Ordering::Relaxed) {
                    stop_reason.store(STOP_TIMEOUT, Ordering::Relaxed);
                    return true;
                }
                false
            })));
        }
        let context = Context::full(&runtime).map_err(setup)?;
        let state = Arc::new(Mutex::new(DataView::default()));
        let globals_json = json!({
            "nowMs": globals.now_ms,
            "workflow": {"id": globals.workflow_id, "name": globals.workflow_name, "active": globals.workflow_active},
            "execution": {"id": globals.execution_id, "mode": globals.execution_mode},
            "vars": globals.vars,
        })
        .to_string();
        context
            .with(|ctx| -> rquickjs::Result<()> {
                install_host(&ctx, state.clone(), globals_json)?;
                run_prelude(&ctx)
            })
            .map_err(|e| JsError::Setup(e.to_string()))?;
        Ok(Sandbox {
            runtime,
            context,
            state,
            compiled: HashMap::new(),
            limits,
            base,
            deadline_ms,
            stop_reason,
            item_gen: 0,
            input_gen: 0,
            data_gen: 0,
            run_index: 0,
        })
    }

    pub fn limits(&self) -> &SandboxLimits {
        &self.limits
    }

    /// Registers a node's raw parameters (for `$('Node').params`) and marks it as existing.
    pub fn add_node(&mut self, name: &str, parameters: Value) {
        lock(&self.state)
            .params
            .insert(name.to_string(), Arc::new(parameters));
    }

    /// Makes a node run visible to `$('Node')`.
    pub fn record_run(&mut self, node: &str, run: RunView) {
        lock(&self.state)
            .runs
            .entry(node.to_string())
            .or_default()
            .push(run);
        self.data_gen += 1;
    }

    /// Sets the node whose parameters are evaluated next and its main input 0.
    pub fn begin_node(
        &mut self,
        node: &str,
        run_index: usize,
        input: Arc<Vec<Item>>,
        sources: Vec<Option<SourceRef>>,
    ) {
        let mut s = lock(&self.state);
        s.current_node = node.to_string();
        s.current_input = input;
        s.current_sources = sources;
        s.current_item = 0;
        drop(s);
        self.run_index = run_index;
        self.input_gen += 1;
        self.item_gen += 1;
    }

    /// Points `$json` etc. at item `index` of the current input.
    fn set_item(&mut self, index: usize) {
        let mut s = lock(&self.state);
        if s.current_item != index {
            s.current_item = index;
            drop(s);
            self.item_gen += 1;
        }
    }

    /// Sets a global for subsequent evaluations (e.g. `$response` during pagination).
    pub fn set_global(&mut self, name: &str, value: &Value) -> Result<(), JsError> {
        let text = value.to_string();
        self.context.with(|ctx| {
            let v = ctx
                .json_parse(text)
                .map_err(|e| JsError::Setup(e.to_string()))?;
            ctx.globals()
                .set(name, v)
                .map_err(|e| JsError::Setup(e.to_string()))
        })
    }

    fn arm(&self, timeout: Duration) {
        self.stop_reason.store(STOP_NONE, Ordering::Relaxed);
        let deadline = self.base.elapsed() + timeout;
        self.deadline_ms
            .store(deadline.as_millis() as u64, Ordering::Relaxed);
    }

    fn compile(&mut self, key: &str, function_source: &str) -> Result<i32, JsError> {
        if let Some(id) = self.compiled.get(key) {
            return Ok(*id);
        }
        self.arm(self.limits.expression_timeout);
        let id = self.context.with(|ctx| {
            ctx.eval::<i32, _>(format!("__lf.register({function_source})"))
                .map_err(
                    |e| match self.js_error(&ctx, e, self.limits.expression_timeout) {
                        JsError::Thrown(m) if m.starts_with("SyntaxError") => JsError::Syntax(m),
                        other => other,
                    },
                )
        })?;
        self.compiled.insert(key.to_string(), id);
        Ok(id)
    }

    /// Evaluates a whole parameter tree for item `index` of the current node.
    pub fn evaluate_tree(
        &mut self,
        tree: &ParamTree,
        index: usize,
    ) -> Result<Value, ExpressionError> {
        if let ParamTree::Static(v) = tree {
            return Ok(v.clone());
        }
        self.set_item(index);
        let mut path = String::new();
        self.arm(self.limits.expression_timeout);
        self.eval_node(tree, index, &mut path)
    }

    fn eval_node(
        &mut self,
        tree: &ParamTree,
        index: usize,
        path: &mut String,
    ) -> Result<Value, ExpressionError> {
        match tree {
            ParamTree::Static(v) => Ok(v.clone()),
            ParamTree::Object(children) => {
                let mut map = serde_json::Map::with_capacity(children.len());
                for (key, child) in children {
                    let len = path.len();
                    if !path.is_empty() {
                        path.push('.');
                    }
                    path.push_str(key);
                    let value = self.eval_node(child, index, path)?;
                    path.truncate(len);
                    map.insert(key.clone(), value);
                }
                Ok(Value::Object(map))
            }
            ParamTree::Array(children) => {
                let mut list = Vec::with_capacity(children.len());
                for (i, child) in children.iter().enumerate() {
                    let len = path.len();
                    path.push_str(&format!("[{i}]"));
                    list.push(self.eval_node(child, index, path)?);
                    path.truncate(len);
                }
                Ok(Value::Array(list))
            }
            ParamTree::Expression(expr) => {
                self.eval_expression(expr, index)
                    .map_err(|error| ExpressionError {
                        parameter: path.clone(),
                        item_index: index,
                        expression: expr.source.clone(),
                        error,
                    })
            }
        }
    }

    fn eval_expression(&mut self, expr: &Expression, index: usize) -> Result<Value, JsError> {
        let id = self.compile(&expr.js_body, &format!("function(){{ {} }}", expr.js_body))?;
        self.call(id, index, self.limits.expression_timeout)
    }

    /// Evaluates one expression string (a template or literal) for item `index`.
    pub fn evaluate_str(&mut self, source: &str, index: usize) -> Result<Value, JsError> {
        match parse_template(source) {
            None => Ok(Value::String(
                source.strip_prefix('=').unwrap_or(source).to_string(),
            )),
            Some(expr) => {
                self.set_item(index);
                self.arm(self.limits.expression_timeout);
                self.eval_expression(&expr, index)
            }
        }
    }

    /// Runs a Code node body. `item` is `Some(index)` in per-item mode (`$json`, `item`), `None`
    /// for all items (`items`). Returns whatever the code returned, as JSON.
    pub fn run_code(&mut self, code: &str, item: Option<usize>) -> Result<Value, JsError> {
        let is_async = code.contains("await");
        let prologue = match item {
            Some(_) => "const item = $input.item;",
            None => "const items = $input.all();",
        };
        let source = format!(
            "{}function() {{ {prologue}\n{code}\n}}",
            if is_async { "async " } else { "" }
        );
        let id = self.compile(&source, &source)?;
        let index = item.unwrap_or(0);
        self.set_item(index);
        let timeout = self.limits.code_timeout;
        self.arm(timeout);
        if !is_async {
            return self.call(id, index, timeout);
        }
        self.context.with(|ctx| {
            let run: Function = ctx
                .globals()
                .get::<_, Object>("__lf")
                .and_then(|o| o.get("run"))
                .map_err(|e| self.js_error(&ctx, e, timeout))?;
            let promise: rquickjs::Promise = run
                .call((
                    id,
                    self.item_gen as f64,
                    self.input_gen as f64,
                    self.data_gen as f64,
                    index as f64,
                    self.run_index as f64,
                ))
                .map_err(|e| self.js_error(&ctx, e, timeout))?;
            let value: rquickjs::Value = promise.finish().map_err(|e| match e {
                rquickjs::Error::WouldBlock => JsError::Thrown(
                    "the code awaits a promise that never settles (there is no I/O to wait for \
                     in the sandbox)"
                        .into(),
                ),
                e => self.js_error(&ctx, e, timeout),
            })?;
            js_to_json(&ctx, value).map_err(|e| self.js_error(&ctx, e, timeout))
        })
    }

    fn call(&self, id: i32, index: usize, timeout: Duration) -> Result<Value, JsError> {
        self.context.with(|ctx| {
            let run: Function = ctx
                .globals()
                .get::<_, Object>("__lf")
                .and_then(|o| o.get("run"))
                .map_err(|e| self.js_error(&ctx, e, timeout))?;
            let value: rquickjs::Value = run
                .call((
                    id,
                    self.item_gen as f64,
                    self.input_gen as f64,
                    self.data_gen as f64,
                    index as f64,
                    self.run_index as f64,
                ))
                .map_err(|e| self.js_error(&ctx, e, timeout))?;
            js_to_json(&ctx, value).map_err(|e| self.js_error(&ctx, e, timeout))
        })
    }

    fn js_error(&self, ctx: &Ctx<'_>, error: rquickjs::Error, timeout: Duration) -> JsError {
        let message = if error.is_exception() {
            let caught = ctx.catch();
            match caught.as_exception() {
                Some(ex) => {
                    let name: Option<String> = ex.get("name").ok();
                    let msg = ex.message().unwrap_or_default();
                    match name {
                        Some(n) if !n.is_empty() => format!("{n}: {msg}"),
                        _ => msg,
                    }
                }
                None => match caught.as_string().and_then(|s| s.to_string().ok()) {
                    Some(s) => s,
                    None => ctx
                        .json_stringify(caught)
                        .ok()
                        .flatten()
                        .and_then(|s| s.to_string().ok())
                        .unwrap_or_else(|| "an exception without a message".into()),
                },
            }
        } else {
            error.to_string()
        };
        match self.stop_reason.swap(STOP_NONE, Ordering::Relaxed) {
            STOP_TIMEOUT => return JsError::Timeout(timeout),
            STOP_CANCEL => return JsError::Cancelled,
            _ => {}
        }
        if message.contains("out of memory") {
            ctx.run_gc();
            return JsError::OutOfMemory(self.limits.memory_bytes / (1024 * 1024));
        }
        if message.contains("stack overflow") {
            return JsError::Thrown(format!("{message} (too deep recursion)"));
        }
        JsError::Thrown(message)
    }

    /// Evaluates `source` as a plain JavaScript expression on raw values (no item context);
    /// used by nodes for small helpers such as regular expressions and sort comparators.
    pub fn call_helper(&mut self, function_source: &str, args: &[Value]) -> Result<Value, JsError> {
        let key = format!("helper:{function_source}");
        let id = match self.compiled.get(&key) {
            Some(id) => *id,
            None => {
                let src = format!("(function(){{ const f = ({function_source}); return function(){{ return f(...__lf_args); }}; }})()");
                self.compile(&key, &src)?
            }
        };
        let args = Value::Array(args.to_vec());
        self.set_global("__lf_args", &args)?;
        let timeout = self.limits.expression_timeout;
        self.arm(timeout);
        self.call(id, 0, timeout)
    }

    pub fn memory_used(&self) -> i64 {
        self.runtime.memory_usage().memory_used_size
    }
}

fn js_to_json<'js>(ctx: &Ctx<'js>, value: rquickjs::Value<'js>) -> rquickjs::Result<Value> {
    use rquickjs::Type;
    Ok(match value.type_of() {
        Type::Uninitialized | Type::Undefined | Type::Null => Value::Null,
        Type::Bool => Value::Bool(value.as_bool().unwrap_or(false)),
        Type::Int => json!(value.as_int().unwrap_or(0)),
        Type::Float => number_to_json(value.as_float().unwrap_or(f64::NAN)),
        Type::String => Value::String(
            value
                .as_string()
                .map(|s| s.to_string())
                .transpose()?
                .unwrap_or_default(),
        ),
        Type::Array | Type::Object | Type::Exception => match ctx.json_stringify(value)? {
            Some(s) => serde_json::from_str(&s.to_string()?).unwrap_or(Value::Null),
            None => Value::Null,
        },
        Type::BigInt => value
            .as_big_int()
            .and_then(|b| b.clone().to_i64().ok())
            .map(|n| json!(n))
            .unwrap_or(Value::Null),
        _ => Value::Null,
    })
}

const PRELUDE: &str = include_str!("prelude.js");

/// The prelude compiled once per process: compiling it takes most of a sandbox's setup time,
/// loading bytecode a fraction of it.
static PRELUDE_BYTECODE: std::sync::OnceLock<Option<Vec<u8>>> = std::sync::OnceLock::new();

fn run_prelude(ctx: &Ctx<'_>) -> rquickjs::Result<()> {
    use rquickjs::module::{Module, WriteOptions};
    let bytecode = PRELUDE_BYTECODE.get_or_init(|| {
        Module::declare(ctx.clone(), "ledgerflow:prelude", PRELUDE)
            .and_then(|m| m.write(WriteOptions::default()))
            .ok()
    });
    match bytecode {
        Some(bytes) => {
            // SAFETY: the bytes were produced above by this same QuickJS build from our own
            // source, and live in a static for the rest of the process.
            let module = unsafe { Module::load(ctx.clone(), bytes) }?;
            let (_, promise) = module.eval()?;
            promise.finish::<()>()
        }
        None => ctx.eval::<(), _>(PRELUDE),
    }
}

/// JavaScript has one number type; integral values become JSON integers, as `JSON.stringify` does.
fn number_to_json(n: f64) -> Value {
    if n.is_finite() && n.fract() == 0.0 && n.abs() < 9.007_199_254_740_992e15 {
        json!(n as i64)
    } else {
        serde_json::Number::from_f64(n)
            .map(Value::Number)
            .unwrap_or(Value::Null)
    }
}

fn install_host<'js>(
    ctx: &Ctx<'js>,
    state: Arc<Mutex<DataView>>,
    globals_json: String,
) -> rquickjs::Result<()> {
    let host = Object::new(ctx.clone())?;
    let item_json =
        |item: Option<&Item>| item.map(|i| serde_json::to_string(i).unwrap_or_default());

    let s = state.clone();
    host.set(
        "json",
        Function::new(ctx.clone(), move || -> String {
            lock(&s)
                .current()
                .and_then(|i| serde_json::to_string(&i.json).ok())
                .unwrap_or_else(|| "{}".into())
        })?,
    )?;
    let s = state.clone();
    host.set(
        "binary",
        Function::new(ctx.clone(), move || -> String {
            lock(&s)
                .current()
                .and_then(|i| i.binary.as_ref())
                .and_then(|b| serde_json::to_string(b).ok())
                .unwrap_or_else(|| "{}".into())
        })?,
    )?;
    let s = state.clone();
    host.set(
        "item",
        Function::new(ctx.clone(), move || -> String {
            item_json(lock(&s).current()).unwrap_or_else(|| "null".into())
        })?,
    )?;
    let s = state.clone();
    host.set(
        "inputAll",
        Function::new(ctx.clone(), move || -> String {
            serde_json::to_string(&*lock(&s).current_input).unwrap_or_else(|_| "[]".into())
        })?,
    )?;
    let s = state.clone();
    host.set(
        "nodeAll",
        Function::new(
            ctx.clone(),
            move |ctx: Ctx<'js>, name: String| -> rquickjs::Result<String> {
                let st = lock(&s);
                match st.node_output(&name) {
                    Ok(items) => Ok(serde_json::to_string(items).unwrap_or_else(|_| "[]".into())),
                    Err(m) => Err(Exception::throw_message(&ctx, &m)),
                }
            },
        )?,
    )?;
    let s = state.clone();
    host.set(
        "nodePaired",
        Function::new(
            ctx.clone(),
            move |ctx: Ctx<'js>, name: String| -> rquickjs::Result<String> {
                let st = lock(&s);
                match st.paired(&name) {
                    Ok(item) => Ok(serde_json::to_string(item).unwrap_or_else(|_| "null".into())),
                    Err(m) => Err(Exception::throw_message(&ctx, &m)),
                }
            },
        )?,
    )?;
    let s = state.clone();
    host.set(
        "nodeParams",
        Function::new(
            ctx.clone(),
            move |ctx: Ctx<'js>, name: String| -> rquickjs::Result<String> {
                match lock(&s).params.get(&name) {
                    Some(p) => Ok(p.to_string()),
                    None => Err(Exception::throw_message(
                        &ctx,
                        &format!("referenced node '{name}' doesn't exist in this workflow"),
                    )),
                }
            },
        )?,
    )?;
    let s = state;
    host.set(
        "nodeExecuted",
        Function::new(ctx.clone(), move |name: String| -> bool {
            lock(&s).runs.contains_key(&name)
        })?,
    )?;
    host.set(
        "globals",
        Function::new(ctx.clone(), move || -> String { globals_json.clone() })?,
    )?;
    ctx.globals().set("__lf_host", host)?;
    Ok(())
}

#[cfg(test)]
mod tests;
