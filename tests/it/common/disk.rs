//! A small file system for disk-full tests: a tmpfs with a size limit, mounted by the test
//! (as root), filled up to a chosen point by a file of its own.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A tmpfs of a given size, unmounted when dropped.
pub struct SmallDisk {
    /// Where it is mounted.
    pub at: PathBuf,
}

impl SmallDisk {
    /// Mounts a tmpfs of `mib` MiB at `at`.
    pub fn mount(at: &Path, mib: u32) -> SmallDisk {
        std::fs::create_dir_all(at).expect("mkdir");
        let mounted = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={mib}m,mode=0755"),
                "tmpfs",
            ])
            .arg(at)
            .status()
            .expect("mount");
        assert!(
            mounted.success(),
            "these tests mount a small tmpfs for the home, which needs root (scripts/test.sh runs them as root)"
        );
        SmallDisk {
            at: at.to_path_buf(),
        }
    }

    /// Fills the disk until `leave` bytes are free, with a file beside the home.
    pub fn fill_leaving(&self, leave: u64) {
        let path = self.at.join("filler");
        let mut file = std::fs::File::create(&path).expect("filler");
        let block = vec![0x5au8; 1 << 20];
        while file.write_all(&block).is_ok() {}
        let _ = file.flush();
        let written = std::fs::metadata(&path).expect("meta").len();
        file.set_len(written.saturating_sub(leave))
            .expect("leave room");
    }

    /// Bytes free on it.
    pub fn free(&self) -> u64 {
        let out = Command::new("df")
            .args(["--output=avail", "-B1"])
            .arg(&self.at)
            .output()
            .expect("df");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .nth(1)
            .and_then(|l| l.trim().parse().ok())
            .expect("df's figure")
    }

    /// Frees what [`SmallDisk::fill_leaving`] took.
    pub fn empty(&self) {
        let _ = std::fs::remove_file(self.at.join("filler"));
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.at).status();
    }
}
