#[agentops::tool(retries = 3)]
fn search(query: &str) -> usize {
    query.len()
}

fn main() {}
