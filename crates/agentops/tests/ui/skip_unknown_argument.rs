#[agentops::tool(skip(password))]
fn login(user: &str, secret: &str) -> bool {
    user.len() == secret.len()
}

fn main() {}
