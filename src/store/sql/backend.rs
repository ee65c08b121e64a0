// The connection-level pieces every part of the store uses: write transactions and the
// `Store` methods that are about the backend itself.

/// Writers of this process waiting to begin a write transaction (on any store of this
/// backend: a count shared by two stores only lengthens an import's pauses).
static WRITERS_WAITING: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Counts a writer as waiting until it began or gave up (a dropped future included).
struct WaitingWriter;

impl WaitingWriter {
    fn new() -> Self {
        WRITERS_WAITING.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        WaitingWriter
    }
}

impl Drop for WaitingWriter {
    fn drop(&mut self) {
        WRITERS_WAITING.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Backend {
    async fn begin_write(&self) -> StoreResult<Tx> {
        let _waiting = WaitingWriter::new();
        Ok(self.writer.begin_with(BEGIN_WRITE).await?)
    }

    /// Runs one statement as a write transaction of its own, so that it too is counted while
    /// it waits for the lock; the rows it changed.
    async fn write_one<'q>(
        &self,
        statement: sqlx::query::Query<'q, Db, <Db as sqlx::Database>::Arguments<'q>>,
    ) -> StoreResult<u64> {
        let mut tx = self.begin_write().await?;
        let changed = statement.execute(&mut *tx).await?.rows_affected();
        tx.commit().await?;
        Ok(changed)
    }
}

#[async_trait]
impl Store for Backend {
    fn backend(&self) -> &'static str {
        BACKEND_NAME
    }

    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn close(&self) {
        self.pool.close().await;
        self.writer.close().await;
    }
}
