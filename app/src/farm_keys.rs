//! Farm encryption keys: the master key (from a file; generated into the
//! data directory on embedded defaults) and each farm's data key, created on
//! the farm's first upload and stored only wrapped by the master key.

use std::io::Write;
use std::path::Path;

use anyhow::Context;
use vitalfarm_domain::FarmId;
use vitalfarm_storage::Database;
use vitalfarm_storage::entity::farm;
use vitalfarm_storage::farm_crypto::{self, DataKey, MasterKey};
use vitalfarm_storage::repo::farms;

/// Reads the base64 master key at `path`, creating it first if absent
/// (atomically, readable by the owner only).
pub fn load_or_generate_master(path: &Path) -> anyhow::Result<MasterKey> {
    if !path.exists() {
        let key = MasterKey::generate().map_err(|e| anyhow::anyhow!("generating master key: {e}"))?;
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir)?;
        let tmp = dir.join(format!(".master-key-{}.tmp", uuid::Uuid::now_v7()));
        {
            let mut opts = std::fs::OpenOptions::new();
            opts.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
            let mut f = opts.open(&tmp)?;
            f.write_all(key.to_base64().as_bytes())?;
            f.write_all(b"\n")?;
            f.sync_all()?;
        }
        // Two processes starting together keep whichever key landed first.
        let linked = std::fs::hard_link(&tmp, path);
        std::fs::remove_file(&tmp)?;
        if let Err(e) = linked
            && e.kind() != std::io::ErrorKind::AlreadyExists
        {
            return Err(e).with_context(|| format!("writing master key {}", path.display()));
        }
    }
    let text = std::fs::read_to_string(path).with_context(|| format!("reading master key {}", path.display()))?;
    MasterKey::from_base64(text.trim()).map_err(|e| anyhow::anyhow!("master key {} is invalid: {e}", path.display()))
}

/// The farm's data key, creating it on first use.
pub async fn data_key(db: &Database, master: &MasterKey, farm: &farm::Model) -> anyhow::Result<DataKey> {
    let id = FarmId::from_uuid(farm.id);
    let row = match &farm.wrapped_key {
        Some(_) => farm.clone(),
        None => {
            let key = DataKey::generate().map_err(|e| anyhow::anyhow!("generating data key: {e}"))?;
            let wrapped = farm_crypto::wrap(master, farm.id.as_bytes(), &key)
                .map_err(|e| anyhow::anyhow!("wrapping data key: {e}"))?;
            farms::set_wrapped_key_if_absent(db, id, wrapped, master.id()).await?
        }
    };
    let wrapped = row.wrapped_key.as_deref().context("farm has no data key")?;
    if row.master_key_id.as_deref() != Some(master.id().as_str()) {
        anyhow::bail!(
            "farm {} was encrypted under another master key ({:?})",
            farm.id,
            row.master_key_id
        );
    }
    farm_crypto::unwrap(master, farm.id.as_bytes(), wrapped)
        .map_err(|e| anyhow::anyhow!("unwrapping the data key of farm {}: {e}", farm.id))
}
