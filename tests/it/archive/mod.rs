//! The archive a pull writes: its formats and manifest shapes
//! (`formats`), in-place writing (`inplace`), and loading it into
//! dockerd (`docker_load`) and containerd (`containerd_load`).

mod containerd_load;
mod docker_load;
mod formats;
mod inplace;
