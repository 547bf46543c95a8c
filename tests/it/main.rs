mod harness;
mod inspircd;
