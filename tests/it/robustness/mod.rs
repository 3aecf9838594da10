//! What goes wrong on the way and must not end a pull, or must end it
//! cleanly: retries inside one run (`retry`), resume across runs killed or
//! interrupted (`resume`), issue 13's failures and what followed (`r13`,
//! `r13_more`), the bad-input corpus (`corpus`, `corpus_net`,
//! `corpus_local`) and property tests over the parsers (`props`).

mod corpus;
mod corpus_local;
mod corpus_net;
mod props;
mod r13;
mod r13_more;
mod resume;
mod retry;
