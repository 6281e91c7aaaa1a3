//! The visualizer's page writer (`deepseek::viz`): the run data read from `metrics.jsonl`,
//! the embedded JSON, and clear errors for bad input. The pages themselves are checked in
//! headless Chromium by scripts/test_viz.sh.

use deepseek::viz::{render_page, run_data, write_page, write_run_page};
use serde_json::{json, Value};
use std::path::PathBuf;

fn tmpdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("deepseek-viz-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The JSON embedded in a page, parsed back.
fn embedded(html: &str) -> Value {
    let tag = "id=\"viz-data\">";
    let start = html.find(tag).unwrap() + tag.len();
    let end = start + html[start..].find("</script>").unwrap();
    serde_json::from_str(&html[start..end]).unwrap()
}

const METRICS: &str = r#"{"step":1,"epoch":0,"loss":2.5,"val_loss":null,"lr":0.1,"time":0.1,"throughput":10.0,"throughput_unit":"tokens/s","grad_norm":3.0}
{"step":2,"epoch":0,"loss":null,"val_loss":null,"lr":0.1,"time":0.2,"throughput":10.0,"throughput_unit":"tokens/s","skipped":true}
{"step":3,"epoch":0,"loss":2.0,"val_loss":2.2,"lr":0.05,"time":0.3,"throughput":10.0,"throughput_unit":"tokens/s","grad_norm":1.5}
{"step":3,"epoch":0,"loss":2.0,"val_loss":2.1,"lr":0.05,"time":0.4,"throughput":10.0,"throughput_unit":"tokens/s","final":true}
"#;

#[test]
fn run_data_reads_the_metrics() {
    let d = tmpdir("run");
    std::fs::write(d.join("metrics.jsonl"), METRICS).unwrap();
    let v = run_data(&d).unwrap();
    assert_eq!(v["kind"], "run");
    assert_eq!(v["steps"], json!([1, 2, 3]));
    assert_eq!(v["loss"], json!([2.5, null, 2.0]));
    assert_eq!(v["lr"], json!([0.1, 0.1, 0.05]));
    assert_eq!(v["grad_norm"], json!([3.0, null, 1.5]));
    assert_eq!(v["val"], json!([[3, 2.2]]));
    assert_eq!(v["final_val"], json!([3, 2.1]));
    // The page carries exactly that data.
    let out = d.join("viz.html");
    write_run_page(&d, &out).unwrap();
    let html = std::fs::read_to_string(&out).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert_eq!(embedded(&html), v);
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn run_errors_name_the_directory() {
    let d = tmpdir("errors");
    let missing = d.join("nope");
    let e = run_data(&missing).unwrap_err().to_string();
    assert!(
        e.contains("nope") && e.contains("no such run directory"),
        "{e}"
    );
    let e = run_data(&d).unwrap_err().to_string();
    assert!(e.contains("has no metrics.jsonl"), "{e}");
    std::fs::write(d.join("metrics.jsonl"), "").unwrap();
    let e = run_data(&d).unwrap_err().to_string();
    assert!(e.contains("has no metrics"), "{e}");
    std::fs::write(d.join("metrics.jsonl"), "{\"step\": \n").unwrap();
    let e = run_data(&d).unwrap_err().to_string();
    assert!(e.contains("line 1"), "{e}");
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn page_embeds_the_data_safely() {
    let data = json!({"kind": "model", "title": "</script><script>alert(1)</script>",
        "nodes": [], "modules": []});
    let html = render_page("<b>", &data).unwrap();
    // Only the page's own four scripts end: the hook, dagre, the data and the page script.
    assert_eq!(html.matches("</script>").count(), 4);
    assert!(html.contains("<title>&lt;b&gt;</title>"));
    assert_eq!(embedded(&html), data);
    assert!(html.contains("dagre") && html.contains("data-rendered"));
    let e = render_page("x", &json!({"kind": "nope"}))
        .unwrap_err()
        .to_string();
    assert!(e.contains("\"kind\""), "{e}");
    assert!(render_page("x", &json!([1, 2])).is_err());
}

#[test]
fn write_page_errors_are_clear() {
    let d = tmpdir("write");
    let data = json!({"kind": "model", "nodes": []});
    let e = write_page(&d.join("missing/page.html"), "t", &data)
        .unwrap_err()
        .to_string();
    assert!(e.contains("does not exist") && e.contains("missing"), "{e}");
    let e = write_page(&d, "t", &data).unwrap_err().to_string();
    assert!(e.contains("is a directory"), "{e}");
    write_page(&d.join("ok.html"), "t", &data).unwrap();
    assert!(d.join("ok.html").is_file());
    let _ = std::fs::remove_dir_all(&d);
}
