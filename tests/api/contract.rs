//! The exported schema file stays equal to the served schema.

#[test]
fn schema_file_matches_the_served_schema() {
    let exported = healthcare_api::graphql::sdl();
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/schema.graphql");
    let on_disk = std::fs::read_to_string(path).expect("schema.graphql at the project root");
    assert!(
        on_disk == exported,
        "schema.graphql is stale: run `cargo run -- print-schema > schema.graphql`"
    );
}
