//! The resolved configuration tree: scopes, options and values, after includes are
//! expanded and repeated scopes merged.
//!
//! Scopes and options live in arenas (`Vec`s indexed by id), so the tree has no
//! recursive ownership: dropping or walking a tree of any shape cannot overflow the
//! stack through scope nesting. Values nest at most [`crate::MAX_DEPTH`] levels, which
//! the parser enforces.
//!
//! Merging rules (applied while the tree is built, and by overrides):
//! * anonymous scopes with the same name (ASCII case-insensitive) in the same parent
//!   are one scope; named scopes merge when the type matches case-insensitively and the
//!   instance matches exactly;
//! * an option set twice in one scope keeps its first position, takes the last value,
//!   and produces a warning.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

use crate::diagnostic::{Diagnostic, Location, Sources};
use crate::lexer;
use crate::schema::Schema;

/// A scalar value: a bare word or a quoted string.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scalar {
    /// The text, with escapes decoded.
    pub text: String,
    /// True if it was written in quotes.
    pub quoted: bool,
    /// Where it was written.
    pub location: Location,
}

/// A list value `( a b c )`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct List {
    /// The elements, in source order.
    pub items: Vec<Value>,
    /// Where the `(` was written.
    pub location: Location,
}

/// One `key = value` entry of a dictionary.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DictEntry {
    /// The key as written (keys may hold dots, e.g. `mta1.example.com`).
    pub key: String,
    /// Where the key was written.
    pub key_location: Location,
    /// The value.
    pub value: Value,
}

/// A dictionary value `[ k = v ... ]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dict {
    /// The entries, in source order (a repeated key keeps both entries).
    pub entries: Vec<DictEntry>,
    /// Where the `[` was written.
    pub location: Location,
}

/// An option value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    /// A word or string.
    Scalar(Scalar),
    /// A list `( ... )`.
    List(List),
    /// A dictionary `[ ... ]`.
    Dict(Dict),
}

impl Value {
    /// Where the value starts.
    pub fn location(&self) -> &Location {
        match self {
            Value::Scalar(s) => &s.location,
            Value::List(l) => &l.location,
            Value::Dict(d) => &d.location,
        }
    }

    /// The scalar text, if this is a scalar.
    pub fn as_scalar(&self) -> Option<&str> {
        match self {
            Value::Scalar(s) => Some(&s.text),
            _ => None,
        }
    }

    /// "a scalar", "a list" or "a dictionary", for messages.
    pub fn kind_name(&self) -> &'static str {
        match self {
            Value::Scalar(_) => "a scalar",
            Value::List(_) => "a list",
            Value::Dict(_) => "a dictionary",
        }
    }

    /// Append the value in source syntax.
    pub(crate) fn write_source(&self, out: &mut String) {
        match self {
            Value::Scalar(s) => write_scalar(&s.text, s.quoted, out),
            Value::List(l) => {
                out.push('(');
                for v in &l.items {
                    out.push(' ');
                    v.write_source(out);
                }
                out.push_str(" )");
            }
            Value::Dict(d) => {
                out.push('[');
                for e in &d.entries {
                    out.push(' ');
                    write_scalar(&e.key, false, out);
                    out.push_str(" = ");
                    e.value.write_source(out);
                }
                out.push_str(" ]");
            }
        }
    }
}

fn write_scalar(text: &str, quoted: bool, out: &mut String) {
    if !quoted && lexer::is_bare_word(text) {
        out.push_str(text);
    } else {
        lexer::quote(text, out);
    }
}

/// Index of a scope in the arena.
pub(crate) type ScopeId = u32;
/// Index of an option in the arena.
pub(crate) type OptId = u32;

/// A child of a scope, in source order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Item {
    Scope(ScopeId),
    Opt(OptId),
}

#[derive(Clone, Debug)]
pub(crate) struct ScopeNode {
    pub(crate) name: String,
    pub(crate) instance: Option<String>,
    pub(crate) location: Location,
    pub(crate) readonly: bool,
    pub(crate) parent: Option<ScopeId>,
    pub(crate) items: Vec<Item>,
    /// Index of the file the scope was first written in (for the read-only pass).
    pub(crate) origin: u32,
    /// Name index, built only once the scope holds more than [`SMALL`] items (small
    /// scopes are scanned: faster, and no allocation).
    index: Option<Box<ScopeIndex>>,
}

/// Scopes with at most this many items are searched linearly.
const SMALL: usize = 12;

type KeyMap = HashMap<u64, Ids, BuildHasherDefault<KeyHasher>>;

#[derive(Clone, Debug, Default)]
struct ScopeIndex {
    scopes: KeyMap,
    options: KeyMap,
}

fn index_insert(m: &mut KeyMap, key: u64, id: u32) {
    match m.entry(key) {
        std::collections::hash_map::Entry::Occupied(mut e) => e.get_mut().push(id),
        std::collections::hash_map::Entry::Vacant(e) => {
            e.insert(Ids::One(id));
        }
    }
}

#[derive(Clone, Debug)]
pub(crate) struct OptionNode {
    pub(crate) name: String,
    pub(crate) value: Value,
    pub(crate) location: Location,
    pub(crate) readonly: bool,
    pub(crate) scope: ScopeId,
    pub(crate) origin: u32,
}

/// Small list used by the merge index: nearly always one id.
#[derive(Clone, Debug)]
enum Ids {
    One(u32),
    Many(Vec<u32>),
}

impl Ids {
    fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        let (one, many) = match self {
            Ids::One(i) => (Some(*i), &[][..]),
            Ids::Many(v) => (None, &v[..]),
        };
        one.into_iter().chain(many.iter().copied())
    }
    fn push(&mut self, id: u32) {
        match self {
            Ids::One(i) => *self = Ids::Many(vec![*i, id]),
            Ids::Many(v) => v.push(id),
        }
    }
}

/// FNV-1a over the ASCII-lowercased name, then the exact instance.
fn key_hash(name: &str, instance: Option<&str>) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes() {
        h ^= u64::from(b.to_ascii_lowercase());
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    if let Some(inst) = instance {
        // A separator no name byte produces after lowercasing, then the exact bytes.
        h ^= 0x1_00;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
        for b in inst.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    h
}

/// The arena tree. Scope 0 is the root (the file's top level).
#[derive(Clone, Debug)]
pub(crate) struct Tree {
    pub(crate) scopes: Vec<ScopeNode>,
    pub(crate) options: Vec<OptionNode>,
}

/// The index keys are already hashes: mix them cheaply instead of running SipHash
/// again (not exposed to untrusted hash flooding: names come from the operator's own
/// files, and a collision only costs a comparison).
#[derive(Default)]
pub(crate) struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(5) ^ u64::from(b)).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
        }
    }
    fn write_u32(&mut self, n: u32) {
        self.0 = (self.0.rotate_left(5) ^ u64::from(n)).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

/// What [`Tree::set_option`] did.
pub(crate) enum SetOutcome {
    New,
    /// Replaced an earlier value set at this location (the option's id follows).
    Replaced(Location, OptId),
}

impl Tree {
    pub(crate) fn new(root_location: Location) -> Self {
        Tree {
            scopes: vec![ScopeNode {
                name: String::new(),
                instance: None,
                location: root_location,
                readonly: false,
                parent: None,
                items: Vec::new(),
                origin: 0,
                index: None,
            }],
            options: Vec::new(),
        }
    }

    pub(crate) fn scope(&self, id: ScopeId) -> &ScopeNode {
        &self.scopes[id as usize]
    }

    pub(crate) fn option(&self, id: OptId) -> &OptionNode {
        &self.options[id as usize]
    }

    fn scope_matches(&self, id: ScopeId, name: &str, instance: Option<&str>) -> bool {
        let s = &self.scopes[id as usize];
        s.name.eq_ignore_ascii_case(name) && s.instance.as_deref() == instance
    }

    fn option_matches(&self, id: OptId, name: &str) -> bool {
        self.options[id as usize].name.eq_ignore_ascii_case(name)
    }

    /// The child scope `name`/`instance` of `parent`, if it exists.
    pub(crate) fn find_scope(
        &self,
        parent: ScopeId,
        name: &str,
        instance: Option<&str>,
    ) -> Option<ScopeId> {
        let p = &self.scopes[parent as usize];
        match &p.index {
            Some(ix) => ix
                .scopes
                .get(&key_hash(name, instance))?
                .iter()
                .find(|&id| self.scope_matches(id, name, instance)),
            None => p.items.iter().find_map(|it| match *it {
                Item::Scope(id) if self.scope_matches(id, name, instance) => Some(id),
                _ => None,
            }),
        }
    }

    /// The option `name` directly in `scope`.
    pub(crate) fn find_option(&self, scope: ScopeId, name: &str) -> Option<OptId> {
        let s = &self.scopes[scope as usize];
        match &s.index {
            Some(ix) => ix
                .options
                .get(&key_hash(name, None))?
                .iter()
                .find(|&id| self.option_matches(id, name)),
            None => s.items.iter().find_map(|it| match *it {
                Item::Opt(id) if self.option_matches(id, name) => Some(id),
                _ => None,
            }),
        }
    }

    /// Record a new item in its scope, building or updating the scope's index.
    fn add_item(&mut self, parent: ScopeId, item: Item) {
        let len = {
            let p = &mut self.scopes[parent as usize];
            p.items.push(item);
            p.items.len()
        };
        let has_index = self.scopes[parent as usize].index.is_some();
        if !has_index && len <= SMALL {
            return;
        }
        let keyed: Vec<(Item, u64)> = if has_index {
            vec![(item, self.item_key(item))]
        } else {
            self.scopes[parent as usize]
                .items
                .iter()
                .map(|&it| (it, self.item_key(it)))
                .collect()
        };
        let ix = self.scopes[parent as usize]
            .index
            .get_or_insert_with(Default::default);
        for (it, key) in keyed {
            match it {
                Item::Scope(id) => index_insert(&mut ix.scopes, key, id),
                Item::Opt(id) => index_insert(&mut ix.options, key, id),
            }
        }
    }

    fn item_key(&self, it: Item) -> u64 {
        match it {
            Item::Scope(id) => {
                let s = &self.scopes[id as usize];
                key_hash(&s.name, s.instance.as_deref())
            }
            Item::Opt(id) => key_hash(&self.options[id as usize].name, None),
        }
    }

    /// Find or create the child scope; a found scope is the merge target.
    pub(crate) fn open_scope(
        &mut self,
        parent: ScopeId,
        name: &str,
        instance: Option<&str>,
        location: Location,
        readonly: bool,
        origin: u32,
    ) -> ScopeId {
        if let Some(id) = self.find_scope(parent, name, instance) {
            return id;
        }
        let id = ScopeId::try_from(self.scopes.len()).unwrap_or(ScopeId::MAX);
        self.scopes.push(ScopeNode {
            name: name.to_owned(),
            instance: instance.map(str::to_owned),
            location,
            readonly,
            parent: Some(parent),
            items: Vec::new(),
            origin,
            index: None,
        });
        self.add_item(parent, Item::Scope(id));
        id
    }

    /// Set an option: a new one is appended, an existing one takes the new value (and
    /// location) in its original position.
    pub(crate) fn set_option(
        &mut self,
        scope: ScopeId,
        name: &str,
        value: Value,
        location: Location,
        readonly: bool,
        origin: u32,
    ) -> SetOutcome {
        if let Some(id) = self.find_option(scope, name) {
            let o = &mut self.options[id as usize];
            let old = std::mem::replace(&mut o.location, location);
            o.value = value;
            o.readonly = readonly;
            o.origin = origin;
            return SetOutcome::Replaced(old, id);
        }
        let id = OptId::try_from(self.options.len()).unwrap_or(OptId::MAX);
        self.options.push(OptionNode {
            name: name.to_owned(),
            value,
            location,
            readonly,
            scope,
            origin,
        });
        self.add_item(scope, Item::Opt(id));
        SetOutcome::New
    }

    /// Print the scope's contents as source text.
    ///
    /// Iterative (explicit stack), so any depth prints without recursion.
    pub(crate) fn write_source(&self, root: ScopeId, out: &mut String) {
        // (scope, next item index, indent)
        let mut stack: Vec<(ScopeId, usize)> = vec![(root, 0)];
        while let Some(&(sid, next)) = stack.last() {
            let items = &self.scopes[sid as usize].items;
            let indent = stack.len() - 1;
            if next >= items.len() {
                stack.pop();
                if !stack.is_empty() {
                    push_indent(out, stack.len() - 1);
                    out.push_str("}\n");
                }
                continue;
            }
            let item = items[next];
            if let Some(top) = stack.last_mut() {
                top.1 += 1;
            }
            push_indent(out, indent);
            match item {
                Item::Opt(oid) => {
                    let o = &self.options[oid as usize];
                    out.push_str(&o.name);
                    out.push_str(" = ");
                    o.value.write_source(out);
                    out.push('\n');
                }
                Item::Scope(cid) => {
                    let c = &self.scopes[cid as usize];
                    out.push_str(&c.name);
                    if let Some(inst) = &c.instance {
                        out.push(' ');
                        lexer::quote(inst, out);
                    }
                    out.push_str(" {\n");
                    stack.push((cid, 0));
                }
            }
        }
    }
}

fn push_indent(out: &mut String, n: usize) {
    for _ in 0..n {
        out.push_str("  ");
    }
}

/// A loaded configuration: the resolved tree (includes expanded, scopes merged), the
/// warnings produced while loading, and, after [`Config::validate`], the schema whose
/// defaults the typed getters fall back to.
#[derive(Clone, Debug)]
pub struct Config {
    pub(crate) tree: Tree,
    pub(crate) warnings: Vec<Diagnostic>,
    pub(crate) sources: Sources,
    pub(crate) schema: Option<Arc<Schema>>,
}

impl Config {
    pub(crate) fn new(tree: Tree, warnings: Vec<Diagnostic>, sources: Sources) -> Self {
        Config {
            tree,
            warnings,
            sources,
            schema: None,
        }
    }

    /// Warnings produced while loading (e.g. an option set twice in one scope).
    pub fn warnings(&self) -> &[Diagnostic] {
        &self.warnings
    }

    /// The whole tree as source text in the same language: parsing it again gives the
    /// same tree (apart from locations and read-only flags). Instances are always
    /// quoted; scalars are quoted when they were quoted or cannot be bare words.
    pub fn to_source(&self) -> String {
        let mut out = String::new();
        self.tree.write_source(0, &mut out);
        out
    }

    /// Attach the source line to a diagnostic located in one of this configuration's
    /// files, so that it renders with the line and a caret.
    pub fn annotate(&self, d: Diagnostic) -> Diagnostic {
        self.sources.annotate(d)
    }
}
