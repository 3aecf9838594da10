//! `pulltar push ARCHIVE DEST` from start to finish: index the archive's
//! members ([`crate::archive::reader`]), find its images and what to push
//! for each name ([`crate::archive::contents`]: the registry's own
//! documents where the archive kept them, so digests stay as pulled), map
//! each name under `DEST` ([`crate::image::destination`]), connect to each
//! repository with push rights, put every blob where it is needed
//! ([`crate::upload`]), then the manifests: an index's after its
//! manifests, each tag last, so the registry never holds a tag that points
//! at missing content. A manifest the registry already has under that tag
//! or digest is not sent again.
//!
//! A second push of the same archive sends no blob; an interrupted one
//! leaves what it stored, and the next run goes on from there. A dry run
//! (`--dry-run`) connects and checks push rights as a push does, then
//! lists on stdout what would be written where, from `HEAD`s alone (the
//! blobs' decision is [`crate::upload::blobs::step`], the push's own); a
//! registry it cannot reach is said to be so, after a list that takes it
//! to hold nothing (exit 1). This module
//! holds no network or file code of its own; it adds the hints a failed
//! push deserves (credentials and push rights, Harbor's missing project, a
//! `DEST` that is no registry).

use std::path::PathBuf;

use crate::archive::contents::{self, Origin, Pushable};
use crate::archive::reader::Archive;
use crate::error::{Error, Result};
use crate::image::destination::Destination;
use crate::image::digest::Digest;
use crate::image::manifest::Descriptor;
use crate::image::reference::Reference;
use crate::registry::client::{self, Access, Registry};
use crate::ui::counters::human_bytes;
use crate::ui::escape::printable;
use crate::ui::progress::Progress;
use crate::upload::blobs::{self, Blobs, Job};

/// Everything one push needs, already validated.
#[derive(Debug)]
pub struct Plan {
    /// The archive.
    pub archive: PathBuf,
    /// Where its images go.
    pub dest: Destination,
    /// How to reach the registry.
    pub registry: client::Options,
    /// Uploads at once.
    pub threads: usize,
    /// The chunk size, when a registry or proxy refuses whole blobs.
    pub chunk: u64,
    /// Only errors on stderr.
    pub quiet: bool,
    /// List what would be written where, and write nothing.
    pub dry_run: bool,
}

/// One name pushed.
#[derive(Debug, Clone)]
pub struct Pushed {
    /// Where it went.
    pub name: Reference,
    /// The digest it now has there.
    pub digest: Digest,
}

/// Runs the push described by `plan`; returns each name pushed.
pub fn run(plan: &Plan) -> Result<Vec<Pushed>> {
    run_inner(plan).map_err(|e| match e {
        Error::Interrupted { .. } => Error::Interrupted { resumable: true }.with_hint(
            "what was pushed so far stays in the registry: run the same command again to go on",
        ),
        other => other,
    })
}

/// One destination name of one of the archive's images.
struct Target {
    item: usize,
    name: Reference,
    repo: usize,
}

fn run_inner(plan: &Plan) -> Result<Vec<Pushed>> {
    let progress = Progress::for_push(plan.quiet || plan.dry_run);
    let archive = Archive::open(&plan.archive)?;
    let items = contents::images(&archive)?;
    // One name per repository, and the names pushed, each with its repository.
    let mut repos: Vec<Reference> = Vec::new();
    let mut targets: Vec<Target> = Vec::new();
    for (item, name) in destinations(plan, &items)? {
        let same = |r: &Reference| r.repository() == name.repository();
        let repo = repos.iter().position(same).unwrap_or(repos.len());
        if repo == repos.len() {
            repos.push(name.clone());
        }
        if !targets.iter().any(|t| t.name == name) {
            targets.push(Target { item, name, repo });
        }
    }
    let needs = targets
        .iter()
        .flat_map(|t| items[t.item].root.blobs().into_iter().map(|b| (b, t.repo)));
    let jobs = blobs::jobs(needs);
    let mut registries: Vec<Registry> = Vec::new();
    for name in &repos {
        match Registry::connect_for(name, &plan.registry, Access::Push) {
            Ok(r) => registries.push(r),
            Err(e) if plan.dry_run && unreachable(&e) => {
                let e = hinted(e, name);
                dry_run(plan, &items, &targets, (&jobs, &repos), &[])?;
                return Err(e.with_hint(
                    "nothing there could be checked: the list above takes it to hold nothing",
                ));
            }
            Err(e) => return Err(hinted(e, name)),
        }
    }
    if plan.dry_run {
        dry_run(plan, &items, &targets, (&jobs, &repos), &registries)
            .map_err(|e| hinted(e, &targets[0].name))?;
        return Ok(Vec::new());
    }
    for (i, item) in items.iter().enumerate() {
        let to: Vec<String> = targets
            .iter()
            .filter(|t| t.item == i)
            .map(|t| t.name.to_string())
            .collect();
        let from: Vec<&str> = item.names.iter().map(Reference::original).collect();
        let from = match from.as_slice() {
            [] => item.root.doc().digest.to_string(),
            names => names.join(", "),
        };
        progress.say(&format!(
            "Pushing {from} ({}) -> {}",
            describe(item),
            to.join(", ")
        ));
    }
    let shown: Vec<Descriptor> = jobs
        .iter()
        .map(|j| Descriptor {
            media_type: String::new(),
            digest: j.blob.digest.clone(),
            size: j.blob.size,
            platform: None,
            annotations: Default::default(),
        })
        .collect();
    progress.expect(shown.len() as u64);
    progress.queue(&shown.iter().collect::<Vec<_>>());
    let blobs = Blobs {
        archive: &archive,
        registries: &registries,
        progress: &progress,
        threads: plan.threads,
        chunk: plan.chunk,
    };
    let tally = blobs
        .push_all(jobs)
        .map_err(|e| hinted(e, &targets[0].name))?;
    let mut pushed = Vec::new();
    for t in &targets {
        let item = &items[t.item];
        manifests(Some(&registries[t.repo]), item, &t.name, true)
            .map_err(|e| hinted(e, &t.name))?;
        pushed.push(Pushed {
            name: t.name.clone(),
            digest: item.root.doc().digest.clone(),
        });
    }
    progress.finish();
    let secs = progress.elapsed().as_secs_f64();
    let sent = progress.bytes_downloaded();
    for (t, p) in targets.iter().zip(&pushed) {
        progress.say(&format!(
            "Pushed {} {} ({})",
            p.name,
            p.digest,
            origin_note(&items[t.item].origin)
        ));
    }
    progress.say(&format!(
        "Blobs: {} uploaded ({} in {secs:.1} s, {}/s), {} already there, {} mounted",
        tally.uploaded,
        human_bytes(sent),
        human_bytes((sent as f64 / secs.max(0.001)) as u64),
        tally.present,
        tally.mounted
    ));
    Ok(pushed)
}

/// Each image's destination names, by `plan.dest`.
fn destinations(plan: &Plan, items: &[Pushable]) -> Result<Vec<(usize, Reference)>> {
    if let Destination::Name(full) = &plan.dest {
        if items.len() != 1 {
            return Err(Error::Usage(format!(
                "DEST {} names one image, but {} holds {}: give DEST as REGISTRY[/PREFIX] to push each under its own name",
                full,
                plan.archive.display(),
                items.len()
            )));
        }
        return Ok(vec![(0, full.clone())]);
    }
    let mut out: Vec<(usize, Reference)> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        if item.names.is_empty() {
            let why = plan.dest.target(None).unwrap_err();
            return Err(Error::Usage(format!(
                "{}: image {} ({why})",
                plan.archive.display(),
                item.root.doc().digest
            )));
        }
        for name in &item.names {
            let target = plan.dest.target(Some(name)).map_err(Error::Usage)?;
            if let Some((j, _)) = out.iter().find(|(j, t)| *j != i && *t == target) {
                return Err(Error::Usage(format!(
                    "two images of {} would both be pushed as {target} ({} and {}): push them to different prefixes",
                    plan.archive.display(),
                    items[*j].root.doc().digest,
                    item.root.doc().digest
                )));
            }
            out.push((i, target));
        }
    }
    Ok(out)
}

/// One manifest of an item in its repository: under `key` (its digest,
/// or the name's tag for the top), what the registry `had` there.
struct Put {
    key: String,
    digest: Digest,
    had: Option<Digest>,
}

/// The manifests of `item` into `registry`'s repository: each document
/// below the top by its digest, then the top under `name`'s tag (or its
/// digest). One the registry already has is not sent again, and none is
/// unless `write` (a dry run's is false; with no registry, nothing is
/// taken to be there).
fn manifests(
    registry: Option<&Registry>,
    item: &Pushable,
    name: &Reference,
    write: bool,
) -> Result<Vec<Put>> {
    let docs = item.root.documents();
    let mut out = Vec::new();
    for (i, doc) in docs.iter().enumerate() {
        let key = match i + 1 == docs.len() {
            true => name.manifest_key(),
            false => doc.digest.to_string(),
        };
        let had = registry.map(|r| r.manifest_digest(&key)).transpose()?;
        let had = had.flatten();
        match registry {
            Some(r) if write && had.as_ref() != Some(&doc.digest) => r.put_manifest(&key, doc)?,
            _ => {}
        }
        let digest = doc.digest.clone();
        out.push(Put { key, digest, had });
    }
    Ok(out)
}

/// `--dry-run`: what the push would write where, one line each on stdout
/// (none with `-q`) and a summary, from `HEAD`s alone, in the order of
/// the archive: each blob in each repository, each manifest below a top,
/// each name. `registries` is empty when the registry could not be
/// reached: then everything is listed as to be sent.
fn dry_run(
    plan: &Plan,
    items: &[Pushable],
    targets: &[Target],
    (jobs, repos): (&[Job], &[Reference]),
    registries: &[Registry],
) -> Result<()> {
    let out = |line: String| {
        if !plan.quiet {
            println!("{}", printable(&line));
        }
    };
    let steps = blobs::plan(jobs, registries, plan.threads)?;
    let names: Vec<&str> = repos.iter().map(Reference::repository).collect();
    let (lines, tally, bytes) = blobs::listing(jobs, steps, &names);
    lines.into_iter().for_each(&out);
    // Manifests: [to put, already there]; names: [new, moved, unchanged].
    let (mut docs, mut names) = ([0; 2], [0; 3]);
    let mut seen: Vec<(usize, Digest)> = Vec::new();
    for t in targets {
        let puts = manifests(registries.get(t.repo), &items[t.item], &t.name, false)?;
        let Some((top, below)) = puts.split_last() else {
            continue;
        };
        let repo = t.name.repository();
        for p in below {
            let seen_before = seen.contains(&(t.repo, p.digest.clone()));
            let there = seen_before || p.had.as_ref() == Some(&p.digest);
            if !seen_before {
                seen.push((t.repo, p.digest.clone()));
                docs[usize::from(there)] += 1;
                out(match there {
                    true => format!("manifest {}: already in {repo}", p.key),
                    false => format!("manifest {}: would put into {repo}", p.key),
                });
            }
        }
        let (name, digest) = (&t.name, &top.digest);
        let (k, line) = match &top.had {
            None => (0, format!("{name}: would be created as {digest}")),
            Some(d) if d == digest => (2, format!("{name}: already {digest}, unchanged")),
            Some(d) => (1, format!("{name}: would move to {digest} (now {d})")),
        };
        names[k] += 1;
        out(line);
    }
    out(format!(
        "Dry run, nothing written: blobs: {} would upload ({}), {} already there, {} would mount; manifests: {} would put, {} already there; names: {} new, {} moved, {} unchanged",
        tally.uploaded, human_bytes(bytes), tally.present, tally.mounted, docs[0], docs[1], names[0], names[1], names[2]
    ));
    Ok(())
}

/// What the top of `item` is, for the first line.
fn describe(item: &Pushable) -> String {
    let blobs = item.root.blobs().len();
    match &item.root {
        contents::Node::Index { children, .. } => {
            format!("an index of {} manifests, {blobs} blobs", children.len())
        }
        contents::Node::Image { .. } => format!("an image of {blobs} blobs"),
    }
}

/// Where a pushed digest comes from, for the summary.
fn origin_note(origin: &Origin) -> String {
    match origin {
        Origin::AsPulled => "the registry's digest, as pulled".into(),
        Origin::OnePlatform { index } => format!(
            "the image's digest, as pulled; the archive holds one platform of the index {index}"
        ),
        Origin::Subset { index, held } => format!(
            "a new index over the {held} manifests the archive holds of {index}, theirs as pulled"
        ),
        Origin::AsFound => "the archive's manifest, as it is".into(),
        Origin::Written(why) => format!("new: {why}"),
    }
}

/// Whether `err` says the registry could not be reached at all.
fn unreachable(err: &Error) -> bool {
    matches!(err, Error::Network { what, .. } if what == "contacting the registry")
}

/// `err` with the hint a push deserves (`name` is where the push went,
/// when the error does not say which repository it met).
fn hinted(err: Error, name: &Reference) -> Error {
    let repo = repository_in(&err).unwrap_or_else(|| name.repository().to_string());
    let project = repo.split('/').next().unwrap_or(&repo).to_string();
    let text = err.to_string().to_lowercase();
    match (&err, err.status()) {
        (_, Some(404)) if text.contains("project") && text.contains("not found") => err.with_hint(format!(
            "the registry (Harbor?) has no project {project:?}: create it first, or push under an existing one (DEST REGISTRY/PROJECT)"
        )),
        (_, Some(401 | 403)) | (Error::Auth(_), _) => err.with_hint(format!(
            "the registry refused the push: check the credentials (-u USER --password-stdin, PULLTAR_USERNAME/PULLTAR_PASSWORD, or docker login {}) and that they may push to {repo}",
            name.registry()
        )),
        (Error::Http { what, .. }, Some(_)) | (Error::Network { what, .. }, None)
            if what == "contacting the registry" =>
        {
            err.with_hint(format!(
                "{} does not answer as a registry (GET /v2/): check DEST, which must be a registry speaking the Docker Registry HTTP API v2",
                name.registry()
            ))
        }
        _ => err,
    }
}

/// The repository in the URL of a failed request (`…/v2/<repo>/blobs/…`).
fn repository_in(err: &Error) -> Option<String> {
    let url = match err {
        Error::Http { url, .. } | Error::Network { url, .. } => url,
        Error::WithHint { error, .. } | Error::Hinted { error, .. } => return repository_in(error),
        _ => return None,
    };
    let rest = &url[url.find("/v2/")? + 4..];
    let end = rest.find("/blobs/").or_else(|| rest.find("/manifests/"))?;
    Some(rest[..end].to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repositories_in_errors() {
        let http = |url: &str| Error::Http {
            what: "x".into(),
            url: url.into(),
            status: 401,
            excerpt: String::new(),
            retry_after: None,
        };
        let e = http("POST http://r:5000/v2/mirror/team/app/blobs/uploads/");
        assert_eq!(repository_in(&e).as_deref(), Some("mirror/team/app"));
        let e = http("PUT https://r/v2/a/manifests/v1").with_hint("h");
        assert_eq!(repository_in(&e).as_deref(), Some("a"));
        assert_eq!(repository_in(&http("GET http://r/v2/")), None);
        let name = Reference::parse("r.example/other/x:1").unwrap();
        let hinted = hinted(http("POST http://r/v2/harbor/x/blobs/uploads/"), &name);
        assert!(hinted.to_string().contains("push to harbor/x"), "{hinted}");
    }
}
