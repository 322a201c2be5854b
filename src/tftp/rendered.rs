//! Rendered boot files as a TFTP [`FileSource`]: what `nodeset` recorded becomes the pxelinux,
//! xNBA, grub2, yaboot or petitboot file the asking boot loader expects, at xCAT's path, when it
//! is asked for (DESIGN.md principle 3). Unknown nodes get the per-network discovery files.
//! Anything this source does not render falls through (`NotFound`) to the files on disk.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use super::source::{Content, DirSource, FileSource, OpenError, TftpPath};
use crate::boot::render::{self, BootFile, BootIndex, RenderCtx};
use crate::store::resolver::Resolver;

/// Rendered files with their paths.
type Files = Vec<(String, BootFile)>;

/// Renders per-node and per-network boot files from the store.
pub struct RenderedSource {
    resolver: Arc<Resolver>,
    /// For aliases (grub2-<node> → the grub2 binary on disk), with the same path rules.
    dir: DirSource,
    ctx: RenderCtx,
    /// The path → node index, rebuilt when the resolver's generation moves.
    index: Mutex<Option<(u64, Arc<BootIndex>)>>,
    discovery: Mutex<Option<(u64, Arc<Files>)>>,
    /// Catch the store up at each open (false when the caller already does, as HTTP's routes).
    catch_up: bool,
}

impl RenderedSource {
    pub fn new(resolver: Arc<Resolver>, dir: DirSource) -> RenderedSource {
        let ctx = RenderCtx {
            tftpdir: dir.root().to_path_buf(),
            server_ip: None,
        };
        RenderedSource {
            resolver,
            dir,
            ctx,
            index: Mutex::new(None),
            discovery: Mutex::new(None),
            catch_up: true,
        }
    }

    /// For a caller that catches the store up itself before each open.
    pub fn caught_up_by_caller(mut self) -> RenderedSource {
        self.catch_up = false;
        self
    }

    fn index(&self) -> Result<Arc<BootIndex>, OpenError> {
        let gen = self.resolver.generation();
        let mut slot = self.index.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((g, idx)) = slot.as_ref() {
            if *g == gen {
                return Ok(idx.clone());
            }
        }
        let idx =
            Arc::new(BootIndex::build(&self.resolver).map_err(|e| OpenError::Io(e.to_string()))?);
        *slot = Some((gen, idx.clone()));
        Ok(idx)
    }

    fn discovery(&self) -> Result<Arc<Files>, OpenError> {
        let gen = self.resolver.generation();
        let mut slot = self.discovery.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((g, files)) = slot.as_ref() {
            if *g == gen {
                return Ok(files.clone());
            }
        }
        let files = Arc::new(
            render::discovery_files(&self.resolver, &self.ctx)
                .map_err(|e| OpenError::Io(e.to_string()))?,
        );
        *slot = Some((gen, files.clone()));
        Ok(files)
    }

    fn serve(&self, f: BootFile, client: SocketAddr) -> Result<Content, OpenError> {
        match f {
            BootFile::Text(t) => Ok(Content::Bytes(Arc::from(t.into_bytes().into_boxed_slice()))),
            BootFile::Alias(target) => {
                let p = TftpPath::parse(&target).map_err(|e| OpenError::Denied(e.to_string()))?;
                self.dir.open(&p, client)
            }
        }
    }
}

impl FileSource for RenderedSource {
    fn open(&self, path: &TftpPath, client: SocketAddr) -> Result<Content, OpenError> {
        // Every commit made before the request arrived is seen (read your writes): nodeset's
        // change is in the file it returns. Cheap when nothing was committed.
        if self.catch_up {
            self.resolver
                .catch_up()
                .map_err(|e| OpenError::Io(format!("cannot read the change log: {e}")))?;
        }
        let rel = path.relative();
        let idx = self.index()?;
        if let Some(f) = render::lookup(&self.resolver, &idx, &rel, &self.ctx)
            .map_err(|e| OpenError::Io(e.to_string()))?
        {
            return self.serve(f, client);
        }
        if rel == render::GRUB_NET_CHAIN_PATH && self.dir.open(path, client).is_err() {
            return Ok(Content::Bytes(Arc::from(
                render::GRUB_NET_CHAIN
                    .as_bytes()
                    .to_vec()
                    .into_boxed_slice(),
            )));
        }
        if rel.starts_with("xcat/xnba/nets/") || rel.starts_with("pxelinux.cfg/") {
            let files = self.discovery()?;
            if let Some((_, f)) = files.iter().find(|(p, _)| *p == rel) {
                return self.serve(f.clone(), client);
            }
        }
        Err(OpenError::NotFound)
    }
}
