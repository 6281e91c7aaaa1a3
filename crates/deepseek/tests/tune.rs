//! AutoHyper (`deepseek::tune`): spaces, samplers, pruners, study files.

use deepseek::tune::*;
use serde_json::json;
use std::collections::BTreeMap;
use std::path::PathBuf;

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("deepseek-tune-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn study(sampler: &str, seed: u64, path: Option<&std::path::Path>) -> Study {
    Study::new(
        Direction::Minimize,
        sampler_by_name(sampler, Some(seed)).unwrap(),
        Box::new(NopPruner),
        path,
    )
    .unwrap()
}

fn branin(t: &mut Trial) -> deepseek::Result<f64> {
    let x1 = t.suggest_float("x1", -5.0, 10.0, false)?;
    let x2 = t.suggest_float("x2", 0.0, 15.0, false)?;
    let b = 5.1 / (4.0 * std::f64::consts::PI.powi(2));
    let c = 5.0 / std::f64::consts::PI;
    Ok((x2 - b * x1 * x1 + c * x1 - 6.0).powi(2)
        + 10.0 * (1.0 - 1.0 / (8.0 * std::f64::consts::PI)) * x1.cos()
        + 10.0)
}

fn mixed(t: &mut Trial) -> deepseek::Result<f64> {
    let lr = t.suggest_float("lr", 1e-4, 1e-1, true)?;
    let n = t.suggest_int("n", 1, 64, true)?;
    let k = t.suggest_int("k", 0, 10, false)?;
    let c = t.suggest_categorical("act", vec![json!("relu"), json!("tanh"), json!(3)])?;
    let pen = if c == json!("tanh") { 0.0 } else { 1.0 };
    Ok((lr.log10() + 2.0).powi(2) + ((n as f64).ln() - 2.0).powi(2) + (k as f64 - 3.0).abs() + pen)
}

#[test]
fn empty_ranges_and_bad_spaces_are_errors() {
    let mut s = study("random", 0, None);
    let mut t = s.ask();
    let e = t.suggest_float("lr", 1.0, 0.5, false).unwrap_err();
    assert!(matches!(e, deepseek::Error::Value { .. }));
    assert!(
        e.to_string().contains("\"lr\"") && e.to_string().contains("empty range"),
        "{e}"
    );
    assert!(t.suggest_int("n", 5, 4, false).is_err());
    assert!(
        t.suggest_float("x", 0.0, 1.0, true).is_err(),
        "log scale reaching 0"
    );
    assert!(t.suggest_int("m", 0, 8, true).is_err());
    let e = t.suggest_categorical("act", vec![]).unwrap_err();
    assert!(e.to_string().contains("empty choices"), "{e}");
    // A parameter asked again with another distribution.
    t.suggest_float("y", 0.0, 1.0, false).unwrap();
    assert!(t.suggest_float("y", 0.0, 2.0, false).is_err());
    assert!(SearchSpace::new()
        .float("a", 0.0, 1.0, false)
        .unwrap()
        .with_param(Param::new("b", Distribution::float(0.0, 1.0, false)).when("a", vec![json!(1)]))
        .is_err());
    assert!(SearchSpace::new()
        .categorical("a", vec![json!(1), json!(2)])
        .unwrap()
        .with_param(Param::new("b", Distribution::float(0.0, 1.0, false)).when("a", vec![json!(3)]))
        .is_err());
    // Such a trial fails and the study goes on.
    s = study("random", 0, None);
    s.optimize(
        |t| {
            let lo = if t.number() == 1 { 2.0 } else { 0.0 };
            t.suggest_float("x", lo, 1.0, false)
        },
        Some(3),
        None,
    )
    .unwrap();
    let states: Vec<_> = s.trials().iter().map(|t| t.state).collect();
    assert_eq!(
        states,
        [TrialState::Complete, TrialState::Fail, TrialState::Complete]
    );
    assert!(s.trials()[1]
        .error
        .as_ref()
        .unwrap()
        .contains("empty range"));
}

#[test]
fn values_lie_in_their_distributions_on_their_grids() {
    for sampler in ["random", "tpe", "gp"] {
        let s = study(sampler, 3, None);
        s.optimize(mixed, Some(25), None).unwrap();
        for t in s.trials() {
            assert_eq!(t.state, TrialState::Complete, "{sampler}: {:?}", t.error);
            let p = t.params_json();
            let lr = p["lr"].as_f64().unwrap();
            assert!((1e-4..=1e-1).contains(&lr));
            let n = p["n"].as_i64().unwrap();
            assert!((1..=64).contains(&n));
            assert!((0..=10).contains(&p["k"].as_i64().unwrap()));
            assert!([json!("relu"), json!("tanh"), json!(3)].contains(&p["act"]));
        }
    }
}

#[test]
fn same_seed_same_trials_other_seed_other_trials() {
    for sampler in ["random", "tpe", "gp"] {
        let run = |seed| {
            let s = study(sampler, seed, None);
            s.optimize(mixed, Some(14), None).unwrap();
            s.trials().into_iter().map(|t| t.params).collect::<Vec<_>>()
        };
        assert_eq!(run(7), run(7), "{sampler}");
        assert_ne!(run(7), run(8), "{sampler}");
    }
}

#[test]
fn study_saves_after_each_trial_and_resumes_identically() {
    let d = tmp("resume");
    for sampler in ["tpe", "gp"] {
        let straight = study(sampler, 11, None);
        straight.optimize(branin, Some(16), None).unwrap();
        let path = d.join(format!("{sampler}.json"));
        let first = study(sampler, 11, Some(&path));
        let mut seen = 0;
        first
            .optimize(
                |t| {
                    // The file holds every trial finished before this one.
                    if t.number() > 0 {
                        let s = std::fs::read_to_string(&path).unwrap();
                        let v: serde_json::Value = serde_json::from_str(&s).unwrap();
                        assert_eq!(v["trials"].as_array().unwrap().len() as u64, t.number());
                    }
                    seen += 1;
                    branin(t)
                },
                Some(9),
                None,
            )
            .unwrap();
        assert_eq!(seen, 9);
        drop(first);
        let resumed = study(sampler, 11, Some(&path));
        assert_eq!(resumed.trials().len(), 9);
        resumed.optimize(branin, Some(7), None).unwrap();
        let a: Vec<_> = straight
            .trials()
            .into_iter()
            .map(|t| (t.params, t.value))
            .collect();
        let b: Vec<_> = resumed
            .trials()
            .into_iter()
            .map(|t| (t.params, t.value))
            .collect();
        assert_eq!(
            a, b,
            "{sampler}: a resumed study continues as if never stopped"
        );
        assert_eq!(resumed.best_value(), straight.best_value());
        // No temporary files left behind.
        let names: Vec<_> = std::fs::read_dir(&d)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert!(names.iter().all(|n| !n.contains("tmp")), "{names:?}");
    }
}

#[test]
fn corrupted_or_mismatched_study_files_are_errors_naming_them() {
    let d = tmp("corrupt");
    let p = d.join("study.json");
    std::fs::write(
        &p,
        b"{\"format\": \"deepseek-autohyper-study\", \"trials\": [",
    )
    .unwrap();
    let e = Study::new(
        Direction::Minimize,
        Box::new(RandomSampler::new(Some(0))),
        Box::new(NopPruner),
        Some(&p),
    )
    .err()
    .expect("corrupted file accepted");
    assert!(matches!(e, deepseek::Error::Value { .. }));
    assert!(e.to_string().contains(&p.display().to_string()), "{e}");
    assert!(e.to_string().contains("corrupted"), "{e}");
    std::fs::write(&p, b"[1, 2, 3]").unwrap();
    assert!(Study::new(
        Direction::Minimize,
        Box::new(NopSampler),
        Box::new(NopPruner),
        Some(&p)
    )
    .is_err());
    // A value outside its distribution.
    let s = study("random", 0, Some(&p.with_extension("ok")));
    std::fs::remove_file(p.with_extension("ok")).ok();
    let s2 = study("random", 0, Some(&p.with_extension("ok")));
    drop(s);
    s2.optimize(|t| t.suggest_float("x", 0.0, 1.0, false), Some(2), None)
        .unwrap();
    let text = std::fs::read_to_string(p.with_extension("ok")).unwrap();
    let x = s2.trials()[0].params["x"];
    std::fs::write(&p, text.replace(&format!("{x}"), "7.5")).unwrap();
    let e = Study::new(
        Direction::Minimize,
        Box::new(NopSampler),
        Box::new(NopPruner),
        Some(&p),
    )
    .err()
    .unwrap();
    assert!(e.to_string().contains("outside its distribution"), "{e}");
    // The other direction.
    let e = Study::new(
        Direction::Maximize,
        Box::new(NopSampler),
        Box::new(NopPruner),
        Some(&p.with_extension("ok")),
    )
    .err()
    .unwrap();
    assert!(e.to_string().contains("direction"), "{e}");
}

/// A sampler that must never be asked (the tests above only load files).
struct NopSampler;
impl Sampler for NopSampler {
    fn name(&self) -> &'static str {
        "nop"
    }
    fn sample_independent(&self, _: &Context<'_>, _: &str, _: &Distribution) -> f64 {
        unreachable!()
    }
}

#[test]
fn failed_and_nan_trials_are_recorded_and_running_ones_come_back_failed() {
    let d = tmp("fail");
    let p = d.join("s.json");
    let s = study("tpe", 1, Some(&p));
    s.optimize(
        |t| {
            let x = t.suggest_float("x", -1.0, 1.0, false)?;
            match t.number() {
                2 => Err(deepseek::Error::Msg("boom".into())),
                3 => Ok(f64::NAN),
                _ => Ok(x * x),
            }
        },
        Some(6),
        None,
    )
    .unwrap();
    let tr = s.trials();
    assert_eq!(tr.len(), 6);
    assert_eq!(tr[2].state, TrialState::Fail);
    assert_eq!(tr[2].error.as_deref(), Some("boom"));
    assert_eq!(tr[3].state, TrialState::Fail);
    assert!(tr[5].state == TrialState::Complete);
    // A trial left running (the process died) is failed on load.
    let t = s.ask();
    drop(t);
    s.save().unwrap();
    let back = study("tpe", 1, Some(&p));
    let last = back.trials().pop().unwrap();
    assert_eq!(last.state, TrialState::Fail);
    assert!(last.error.unwrap().contains("interrupted"));
    assert_eq!(back.trials().len(), 7);
}

#[test]
fn conditional_parameters_appear_only_under_their_parent_values() {
    let space = SearchSpace::new()
        .float("lr", 1e-4, 1e-1, true)
        .unwrap()
        .categorical("layers", vec![json!(1), json!(2)])
        .unwrap()
        .with_param(
            Param::new("dropout", Distribution::float(0.0, 0.5, false))
                .when("layers", vec![json!(2)]),
        )
        .unwrap();
    for sampler in ["random", "tpe", "gp"] {
        let s = study(sampler, 5, None);
        s.optimize(
            |t| {
                let p = t.suggest_space(&space)?;
                let lr = p["lr"].as_f64().unwrap();
                let drop = p.get("dropout").and_then(|v| v.as_f64()).unwrap_or(0.3);
                Ok((lr.log10() + 2.5).powi(2) + (drop - 0.1).abs())
            },
            Some(20),
            None,
        )
        .unwrap();
        let mut with = 0;
        for t in s.trials() {
            let p = t.params_json();
            assert_eq!(
                p.contains_key("dropout"),
                p["layers"] == json!(2),
                "{sampler} {p:?}"
            );
            with += p.contains_key("dropout") as usize;
        }
        assert!(with > 0 && with < 20, "{sampler}: {with}");
    }
}

fn curve_trial(values: &[(u64, f64)], state: TrialState, number: u64) -> FrozenTrial {
    FrozenTrial {
        number,
        state,
        params: BTreeMap::new(),
        distributions: BTreeMap::new(),
        value: values.last().map(|v| v.1),
        intermediate_values: values.iter().cloned().collect(),
        rungs: BTreeMap::new(),
        start_time: 0.0,
        duration: None,
        error: None,
    }
}

#[test]
fn median_pruner_decisions_on_constructed_curves() {
    // Five complete curves; at step 2 their values are 5, 6, 7, 8, 9 (median 7).
    let mut trials: Vec<FrozenTrial> = (0..5)
        .map(|i| {
            let v = 5.0 + i as f64;
            curve_trial(
                &[(0, v + 2.0), (1, v + 1.0), (2, v)],
                TrialState::Complete,
                i,
            )
        })
        .collect();
    let p = MedianPruner::default();
    let dir = Direction::Minimize;
    let mut worse = curve_trial(&[(0, 9.0), (1, 8.0), (2, 7.5)], TrialState::Running, 5);
    let mut better = curve_trial(&[(0, 9.0), (1, 8.0), (2, 6.5)], TrialState::Running, 5);
    assert!(p.prune(&trials, &mut worse, dir));
    assert!(!p.prune(&trials, &mut better, dir));
    // The trial's best value so far counts, not its last.
    let mut dipped = curve_trial(&[(0, 9.0), (1, 6.0), (2, 7.5)], TrialState::Running, 5);
    assert!(!p.prune(&trials, &mut dipped, dir));
    // Maximising flips the comparison.
    assert!(!p.prune(&trials, &mut worse, Direction::Maximize));
    // Warm-up, start-up trials and steps nobody reported are never pruned.
    let warm = MedianPruner {
        n_warmup_steps: 3,
        ..Default::default()
    };
    assert!(!warm.prune(&trials, &mut worse, dir));
    let mut late = curve_trial(&[(7, 100.0)], TrialState::Running, 5);
    assert!(!p.prune(&trials, &mut late, dir));
    trials.truncate(4);
    assert!(!p.prune(&trials, &mut worse, dir));
}

#[test]
fn successive_halving_decisions_on_constructed_curves() {
    let p = SuccessiveHalvingPruner {
        min_resource: 1,
        reduction_factor: 2,
        min_early_stopping_rate: 0,
    };
    let dir = Direction::Minimize;
    let mut trials: Vec<FrozenTrial> = Vec::new();
    // Rung 0 is at step 1, rung 1 at step 2, rung 2 at step 4.
    let mut first = curve_trial(&[(0, 3.0), (1, 3.0)], TrialState::Running, 0);
    assert!(!p.prune(&trials, &mut first, dir), "alone it is the best");
    assert_eq!(first.rungs.get(&0), Some(&3.0));
    trials.push(first);
    let mut worse = curve_trial(&[(0, 9.0), (1, 5.0)], TrialState::Running, 1);
    assert!(
        p.prune(&trials, &mut worse, dir),
        "not in the top half of {{3, 5}}"
    );
    let mut best = curve_trial(&[(0, 9.0), (1, 1.0)], TrialState::Running, 1);
    assert!(!p.prune(&trials, &mut best, dir));
    trials.push(best);
    // Before the next rung nothing changes.
    let mut t = curve_trial(&[(0, 2.0), (1, 2.0)], TrialState::Running, 2);
    assert!(
        p.prune(&trials, &mut t, dir),
        "of 3 values only the best goes on"
    );
    let mut t = curve_trial(&[(0, 2.0), (1, 0.5)], TrialState::Running, 2);
    assert!(
        !p.prune(&trials, &mut t, dir),
        "0.5 is the best of {{3, 1, 0.5}}"
    );
    let mut t4 = t.clone();
    t4.intermediate_values.insert(2, 1.5);
    assert!(
        !p.prune(&trials, &mut t4, dir),
        "alone at rung 1 it is promoted"
    );
    assert_eq!(t4.rungs.len(), 2);
}

#[test]
fn model_samplers_beat_random_on_a_quadratic_and_branin() {
    let quad = |t: &mut Trial| -> deepseek::Result<f64> {
        let mut s = 0.0;
        for i in 0..4 {
            let x = t.suggest_float(&format!("x{i}"), -5.0, 5.0, false)?;
            s += (x - 1.0 + 0.3 * i as f64).powi(2);
        }
        Ok(s)
    };
    let median_best = |sampler: &str, f: &dyn Fn(&mut Trial) -> deepseek::Result<f64>, n| {
        let mut b: Vec<f64> = (0..5)
            .map(|seed| {
                let s = study(sampler, seed, None);
                s.optimize(f, Some(n), None).unwrap();
                s.best_value().unwrap()
            })
            .collect();
        b.sort_by(|a, b| a.total_cmp(b));
        b[2]
    };
    let r = median_best("random", &quad, 40);
    let tpe = median_best("tpe", &quad, 40);
    let gp = median_best("gp", &quad, 40);
    assert!(gp < 0.1 * r, "gp {gp} random {r}");
    assert!(tpe < r, "tpe {tpe} random {r}");
    let r = median_best("random", &branin, 30);
    let gp = median_best("gp", &branin, 30);
    assert!(gp < r && gp < 0.45, "gp {gp} random {r}");
}

#[test]
fn report_shows_the_best_trial_and_the_search() {
    let d = tmp("report");
    let s = study("gp", 2, None);
    s.optimize(branin, Some(12), None).unwrap();
    let p = d.join("r.html");
    report::write_html(&s, &p).unwrap();
    let html = std::fs::read_to_string(&p).unwrap();
    let best = s.best_trial().unwrap();
    assert!(html.contains(&format!("Best trial <b>{}</b>", best.number)));
    assert!(html.contains("<svg") && html.contains("</svg>"));
    assert_eq!(html.matches("<circle").count(), 12);
    assert!(report::table(&s).contains("<- best"));
}
