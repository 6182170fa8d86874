#[agentops::tool(model = "gpt-4o")]
fn search(query: &str) -> usize {
    query.len()
}

fn main() {}
