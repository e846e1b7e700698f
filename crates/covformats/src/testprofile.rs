//! A small hand-built profile for the formats' unit tests (the integration
//! tests use real Go coverage).

use covdata::model::{CounterMode, Function, Granularity, Package, Profile, Unit};

fn unit(sl: u32, el: u32, statements: u32, count: u32) -> Unit {
    Unit {
        start_line: sl,
        start_col: 2,
        end_line: el,
        end_col: 10,
        statements,
        count,
    }
}

fn func(name: &str, file: &str, units: Vec<Unit>) -> Function {
    Function {
        name: name.into(),
        file: file.into(),
        literal: name.starts_with("func."),
        units,
    }
}

pub(crate) fn sample() -> Profile {
    Profile {
        mode: CounterMode::Count,
        granularity: Granularity::PerBlock,
        packages: vec![
            Package {
                path: "example.com/app".into(),
                name: "main".into(),
                module_path: "example.com/app".into(),
                functions: vec![
                    func(
                        "helper",
                        "example.com/app/util.go",
                        vec![unit(20, 22, 2, 0)],
                    ),
                    func(
                        "main",
                        "example.com/app/main.go",
                        vec![unit(3, 5, 3, 1), unit(6, 6, 1, 0), unit(8, 8, 0, 0)],
                    ),
                    func("init", "example.com/app/util.go", vec![unit(3, 4, 1, 7)]),
                    func("init", "example.com/app/util.go", vec![unit(10, 11, 1, 0)]),
                ],
            },
            Package {
                path: "example.com/app/store".into(),
                name: "store".into(),
                module_path: "example.com/app".into(),
                functions: vec![func(
                    "*DB.Get<&>",
                    "example.com/app/store/db.go",
                    vec![unit(5, 9, 4, 12), unit(10, 12, 2, 0)],
                )],
            },
        ],
    }
}
