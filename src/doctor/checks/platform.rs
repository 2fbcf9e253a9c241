//! The machine: OS, memory, disk and Homebrew.

use super::*;

pub(super) fn platform_os(f: &Facts) -> Check {
    let supported = matches!(f.os.as_str(), "linux" | "macos")
        && matches!(f.arch.as_str(), "x86_64" | "aarch64");
    if supported {
        Check::ok("platform.os", format!("{} {}", f.os, f.arch))
    } else {
        Check::fail(
            "platform.os",
            format!("{} {} is not supported", f.os, f.arch),
            "run ccr-setup on macOS or Linux (x86_64 or arm64)",
        )
    }
}

pub(super) fn platform_memory(f: &Facts) -> Check {
    let Some(bytes) = f.memory_bytes else {
        return Check::warn(
            "platform.memory",
            "could not read the memory size",
            "check it yourself: gpt-oss:20b needs 16 GB of RAM (12 GB at the very least)",
        );
    };
    // The kernel reserves a little, so a 16 GB machine reports ~15.6 GiB: round.
    let gib = (bytes + GIB / 2) / GIB;
    let summary = format!("{gib} GB of memory");
    if f.model != DEFAULT_MODEL {
        return Check::ok("platform.memory", format!("{summary} (model {})", f.model));
    }
    if gib < MEMORY_FAIL_GIB {
        Check::fail(
            "platform.memory",
            format!("{summary}: too little for {DEFAULT_MODEL}, which needs about 13 GB"),
            "use a machine with 16 GB or more, or a smaller model: set \"Ollama\": {\"model\": \"…\"} in the config and `ccr-setup up --model …`",
        )
    } else if gib < MEMORY_WARN_GIB {
        Check::warn(
            "platform.memory",
            format!("{summary}: {DEFAULT_MODEL} will load but leave little for everything else"),
            "close memory-hungry apps before `ccr-setup up`, or use a machine with 16 GB or more",
        )
    } else {
        Check::ok("platform.memory", summary)
    }
}

pub(super) fn platform_disk(f: &Facts) -> Check {
    if !f.ollama.local {
        return Check::ok(
            "platform.disk",
            format!("models live on the remote server {}", f.ollama.url),
        );
    }
    let (measured, free) = match &f.disk {
        Ok(v) => v.clone(),
        Err(e) => {
            return Check::warn(
                "platform.disk",
                "could not read the free disk space",
                format!("check it yourself: {DEFAULT_MODEL} needs about 15 GB free"),
            )
            .with_detail(e.clone())
        }
    };
    let detail = format!(
        "models directory {} (measured at {})",
        f.models_dir.display(),
        measured.display()
    );
    let summary = format!("{} free for models", crate::humanize::bytes(free));
    let installed = f.ollama.has_model(&f.model) == Some(true);
    let need = (!installed && f.model == DEFAULT_MODEL).then_some(DEFAULT_MODEL_DISK_BYTES);
    let check = match need {
        Some(need) if free < need => Check::fail(
            "platform.disk",
            format!("{summary}; {} needs about {} to download", f.model, crate::humanize::bytes(need)),
            format!(
                "free at least {} on that disk, or point OLLAMA_MODELS at a disk with room (and restart Ollama)",
                crate::humanize::bytes(need - free)
            ),
        ),
        _ if free < DISK_LOW_BYTES => Check::warn(
            "platform.disk",
            format!("{summary}: nearly full"),
            "free some space on that disk; Ollama fails mid-download or mid-load when it runs out",
        ),
        _ => Check::ok("platform.disk", summary),
    };
    check.with_detail(detail)
}

pub(super) fn homebrew(f: &Facts) -> Check {
    match (&f.platform, &f.brew) {
        (Platform::Linux, _) | (_, None) => Check::ok("homebrew", "not needed on Linux"),
        (Platform::MacOs, Some(ToolProbe::Missing)) => Check::warn(
            "homebrew",
            "Homebrew is not installed (`ccr-setup init` uses it to install Ollama)",
            "/bin/bash -c \"$(curl -fsSL https://raw.githubusercontent.com/Homebrew/install/HEAD/install.sh)\"",
        ),
        (Platform::MacOs, Some(ToolProbe::Found { path, version })) => Check::ok(
            "homebrew",
            format!(
                "Homebrew {}",
                version.as_deref().unwrap_or("(version unknown)")
            ),
        )
        .with_detail(path.display().to_string()),
    }
}
