//! The build-time renderer against ts-rs's own output, its warnings, and a whole crate.

use std::any::TypeId;
use std::collections::HashSet;
use std::path::{Path, PathBuf};

use ts_rs::TS;

use super::sources::{Source, items};
use super::types::{ProcedureTypes, Renderer};
use super::{TypeScript, Warning};

/// Defines the items (deriving `TS`) in `derived`, and their source text as `SOURCE`.
macro_rules! with_source {
    ($($item:item)*) => {
        #[allow(dead_code)]
        mod derived {
            use serde::Serialize;
            use ts_rs::TS;
            $($item)*
        }
        const SOURCE: &str = stringify!($($item)*);
    };
}

with_source! {
    #[derive(Serialize, TS)]
    #[serde(rename_all = "camelCase")]
    pub struct Everything {
        pub user_id: String,
        pub created_at: i64,
        pub ratio: f64,
        pub big: u64,
        pub flag: bool,
        pub letter: char,
        pub maybe: Option<Inner>,
        #[ts(optional)]
        pub sometimes: Option<String>,
        #[ts(optional = nullable)]
        pub nullable: Option<i32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub omitted: Option<String>,
        #[serde(rename = "Renamed")]
        pub renamed_field: u8,
        #[serde(skip)]
        pub hidden: String,
        pub list: Vec<Inner>,
        pub counts: std::collections::HashMap<String, i64>,
        pub by_status: std::collections::BTreeMap<Status, u32>,
        pub pair: (i32, String),
        pub unit: (),
        pub boxed: Box<Inner>,
        pub bytes: [u8; 3],
        pub json: serde_json::Value,
        #[ts(type = "Date")]
        pub when: String,
        pub r#type: String,
        pub id: Id,
        pub point: Point,
        pub marker: Marker,
        pub empty: Empty,
        pub other: Renamed,
        pub nested: Vec<Option<Status>>,
    }

    #[derive(Serialize, TS)]
    pub struct Inner {
        pub x_y: i32,
    }

    #[derive(Serialize, TS)]
    #[serde(rename_all = "snake_case")]
    pub enum Status {
        InProgress,
        #[serde(rename = "done!")]
        Done,
        #[serde(skip)]
        Hidden,
    }

    #[derive(Serialize, TS)]
    pub struct Id(pub String);

    #[derive(Serialize, TS)]
    pub struct Point(pub f32, pub f32);

    #[derive(Serialize, TS)]
    pub struct Marker;

    #[derive(Serialize, TS)]
    pub struct Empty {}

    #[derive(Serialize, TS)]
    #[serde(rename = "Other")]
    pub struct Renamed {
        pub a: bool,
    }
}

/// The run-time path's collection (`reactive::__private::TsCollector`): every declared type
/// reachable from `T`, with the run-time settings.
#[derive(Default)]
struct Collector {
    seen: HashSet<TypeId>,
    out: Vec<(String, String)>,
}

fn config() -> ts_rs::Config {
    ts_rs::Config::new().with_large_int("number")
}

impl ts_rs::TypeVisitor for Collector {
    fn visit<T: TS + 'static + ?Sized>(&mut self) {
        if !self.seen.insert(TypeId::of::<T>()) {
            return;
        }
        if T::output_path().is_some() {
            self.out.push((T::ident(&config()), T::decl(&config())));
        }
        T::visit_dependencies(self);
    }
}

fn ts_rs_types<T: TS + 'static>() -> (String, Vec<(String, String)>) {
    let mut collector = Collector::default();
    ts_rs::TypeVisitor::visit::<T>(&mut collector);
    T::visit_dependencies(&mut collector);
    T::visit_generics(&mut collector);
    collector.out.sort();
    collector.out.dedup_by(|a, b| a.0 == b.0);
    (T::name(&config()), collector.out)
}

fn render(source: &str, output: &str) -> (ProcedureTypes, Vec<Warning>) {
    let sources = vec![Source {
        path: PathBuf::from("src/lib.rs"),
        file: syn::parse_file(source).expect("the test source parses"),
    }];
    let items = items(&sources);
    let mut renderer = Renderer::new(&items);
    let output: syn::Type = syn::parse_str(output).expect("a type");
    let types = renderer.procedure(None, &output, Path::new("src/lib.rs"), "test.procedure");
    (types, renderer.into_warnings())
}

#[test]
fn declarations_match_ts_rs_byte_for_byte() {
    let (ts_name, ts_declarations) = ts_rs_types::<Vec<derived::Everything>>();
    let (types, warnings) = render(SOURCE, "Vec<Everything>");
    assert_eq!(warnings, []);
    assert_eq!(types.input, "null");
    assert_eq!(types.output, ts_name);
    assert_eq!(types.declarations, ts_declarations);
}

#[test]
fn renamed_fields_and_unit_enums_render_as_expected() {
    let (types, _) = render(SOURCE, "Everything");
    let declaration = |name: &str| {
        types
            .declarations
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, d)| d.clone())
            .unwrap_or_else(|| panic!("{name} not declared"))
    };
    assert_eq!(
        declaration("Status"),
        r#"type Status = "in_progress" | "done!";"#
    );
    let everything = declaration("Everything");
    for part in [
        "userId: string,",
        "createdAt: number,",
        "maybe: Inner | null,",
        "sometimes?: string,",
        "nullable?: number | null,",
        "omitted?: string | null,",
        "Renamed: number,",
        "list: Array<Inner>,",
        "json: JsonValue,",
        "when: Date,",
        "type: string,",
        "other: Other,",
    ] {
        assert!(everything.contains(part), "{part} not in {everything}");
    }
    assert!(!everything.contains("hidden"));
}

#[test]
fn what_syntax_cannot_render_is_unknown_with_a_warning() {
    let source = r#"
        #[derive(Serialize, TS)]
        pub struct Output {
            pub foreign: other_crate::Thing,
            pub page: Page<String>,
            pub with_data: Shape,
        }

        #[derive(Serialize, TS)]
        pub struct Page<T> {
            pub items: Vec<T>,
        }

        #[derive(Serialize, TS)]
        pub enum Shape {
            Circle(f64),
        }

        #[derive(Serialize, TS)]
        pub struct Flat {
            #[serde(flatten)]
            pub inner: Output,
        }
    "#;
    let (types, warnings) = render(source, "(Output, Flat)");
    assert_eq!(types.output, "[Output, Flat]");
    let declarations: Vec<&str> = types.declarations.iter().map(|(_, d)| d.as_str()).collect();
    assert_eq!(
        declarations,
        [
            "type Flat = unknown;",
            "type Output = { foreign: unknown, page: unknown, with_data: Shape, };",
            "type Shape = unknown;",
        ]
    );
    let messages: Vec<String> = warnings.iter().map(ToString::to_string).collect();
    for expected in [
        "src/lib.rs:4: `other_crate::Thing` in field `foreign` of `Output` is not a struct or enum of this crate",
        "src/lib.rs:5: `Page<String>` in field `page` of `Output` is generic",
        "has a variant with data (`Circle`)",
        "field `inner` of `Flat` has `#[serde(flatten)]`",
    ] {
        assert!(
            messages.iter().any(|m| m.contains(expected)),
            "no warning with {expected:?} in {messages:#?}"
        );
    }
}

#[test]
fn a_serde_attribute_ts_rs_ignores_is_ignored_with_a_warning() {
    let source = r#"
        #[derive(Serialize, TS)]
        #[serde(rename_all = "camelCase", transparent)]
        pub struct Wrapper {
            pub the_value: i32,
        }
    "#;
    let (types, warnings) = render(source, "Wrapper");
    assert_eq!(
        types.declarations,
        [(
            "Wrapper".to_owned(),
            "type Wrapper = { the_value: number, };".to_owned()
        )]
    );
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].message.contains("`transparent`"));
}

#[test]
fn a_crate_renders_its_procedures_with_the_macros_analysis() {
    let dir = std::env::temp_dir().join(format!("reactive-build-test-{}", std::process::id()));
    let src = dir.join("src");
    std::fs::create_dir_all(&src).expect("temp dir");
    std::fs::write(
        src.join("lib.rs"),
        r#"
        use reactive::{ReactiveDb, reactive_function};

        #[derive(serde::Deserialize, ts_rs::TS)]
        #[serde(rename_all = "camelCase")]
        pub struct OrgInput {
            pub organization_id: String,
        }

        #[derive(serde::Serialize, ts_rs::TS)]
        pub struct Agent {
            pub id: String,
        }

        #[reactive_function(name = "agents.list")]
        pub async fn agents_list(db: &ReactiveDb<sqlx::Postgres>, input: OrgInput) -> reactive::Result<Vec<Agent>> {
            Ok(sqlx::query_as("SELECT id FROM agent WHERE organization_id = $1")
                .bind(&input.organization_id)
                .fetch_all(db)
                .await?)
        }

        #[reactive_function]
        pub async fn with_counts(db: &ReactiveDb<sqlx::Postgres>) -> reactive::Result<i64> {
            agents_list(db, OrgInput { organization_id: String::new() }).await?;
            Ok(sqlx::query_scalar("SELECT COUNT(*) FROM message").fetch_one(db).await?)
        }

        #[reactive_function(name = "agents.rename")]
        pub async fn rename(db: &ReactiveDb<sqlx::Postgres>, input: OrgInput) -> reactive::Result<()> {
            sqlx::query("UPDATE agent SET name = 'x' WHERE organization_id = $1")
                .bind(&input.organization_id)
                .execute(db)
                .await?;
            Ok(())
        }
        "#,
    )
    .expect("write the test crate");
    let rendered = TypeScript::new("web/generated")
        .manifest_dir(&dir)
        .render()
        .expect("renders");
    std::fs::remove_dir_all(&dir).ok();
    assert_eq!(rendered.warnings, []);
    assert_eq!(rendered.read, [src.join("lib.rs")]);
    let file = |name: &str| {
        rendered
            .files
            .iter()
            .find(|(p, _)| p == Path::new(name))
            .map(|(_, c)| c.as_str())
            .unwrap_or_default()
    };
    let procedures = file("procedures.ts");
    for line in [
        "'agents.list': { kind: 'query'; input: OrgInput; output: Array<Agent>; dependencies: ['agent'] };",
        "'agents.rename': { kind: 'mutation'; input: OrgInput; output: null; dependencies: ['agent'] };",
        // The callee's table, added as the registry adds it.
        "'with_counts': { kind: 'query'; input: null; output: number; dependencies: ['agent', 'message'] };",
    ] {
        assert!(procedures.contains(line), "{line} not in {procedures}");
    }
    assert!(file("types.ts").contains("export type OrgInput = { organizationId: string, };"));
}

#[test]
fn a_source_that_does_not_parse_is_an_error() {
    let dir = std::env::temp_dir().join(format!("reactive-build-bad-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("src")).expect("temp dir");
    std::fs::write(dir.join("src/lib.rs"), "pub fn broken( {").expect("write");
    let error = TypeScript::new("out")
        .manifest_dir(&dir)
        .render()
        .unwrap_err();
    std::fs::remove_dir_all(&dir).ok();
    assert!(matches!(error, super::BuildError::Parse { .. }), "{error}");
}
