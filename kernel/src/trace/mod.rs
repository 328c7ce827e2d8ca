//! Kernel tracing: tracepoint formats from tracefs, and perf_event_open
//! sampling of tracepoints on every online CPU with in-kernel filters,
//! callchains and lost-event accounting; and an outstanding-allocation set
//! kept in the kernel by BPF programs on raw tracepoints; the trace window
//! (alloc+free, then free-only) and the outstanding set both feed.
//!
//! Nothing here writes to tracefs: filters are set per perf event with
//! PERF_EVENT_IOC_SET_FILTER, so they die with the file descriptors, even
//! when the process is killed with SIGKILL. When tracefs is not mounted it
//! is mounted in a private mount namespace of this process only.

pub mod bpf_outstanding;
pub mod bpf_stacks;
pub mod bpf_tally;
pub mod callsite;
pub mod followed;
pub mod in_kernel;
pub mod outstanding;
pub mod page;
pub mod perf;
pub mod tracefs;
pub mod window;

pub use perf::{PerfTracer, Sample, TracerStats};
pub use tracefs::{EventFormat, Field, Tracefs};
