//! The README's integration example is the compiled one: the block in `README.md` must equal
//! the region of `examples/axum_integration.rs` between its `integration` markers.

#[test]
fn readme_integration_block_matches_the_compiled_example() {
    let readme = include_str!("../README.md");
    let example = include_str!("../examples/axum_integration.rs");
    let region = example
        .split_once("// integration:begin\n")
        .and_then(|(_, rest)| rest.split_once("// integration:end"))
        .map(|(region, _)| region.trim_end())
        .unwrap_or_default();
    assert!(
        !region.is_empty(),
        "the example lost its integration markers"
    );
    let block = format!("```rust,ignore\n{region}\n```");
    assert!(
        readme.contains(&block),
        "README.md's integration example differs from examples/axum_integration.rs; \
         copy the region between the markers into the README"
    );
}
