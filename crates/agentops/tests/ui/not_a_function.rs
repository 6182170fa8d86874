#[agentops::action]
struct Planner;

fn main() {}
