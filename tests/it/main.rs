mod harness;
mod harness_selftest;
mod inspircd;
mod smoke;
mod limits;
