//! What goes wrong on the way and must not end a pull, or must end it
//! cleanly: retries inside one run (`retry`), resume across runs killed or
//! interrupted (`resume`), issue 13's failures and what followed (`r13`,
//! `r13_more`), issue 21's one request path (`r21`: a push rations as a
//! pull does, a 5xx on the resolving HEAD goes to the next host), the bad-
//! input corpus (`corpus`, `corpus_net`, `corpus_local`) and property tests
//! over the parsers (`props`).

mod corpus;
mod corpus_local;
mod corpus_net;
mod props;
mod r13;
mod r13_more;
mod r21;
mod resume;
mod retry;
