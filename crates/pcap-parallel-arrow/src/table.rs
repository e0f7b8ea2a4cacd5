//! [`PacketTable`]: a capture read as a table, chunk by chunk on the
//! workers, delivered in file order.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::Poll;
use std::thread::JoinHandle;
use std::time::Duration;

use arrow_array::{RecordBatch, RecordBatchReader};
use arrow_schema::{ArrowError, SchemaRef};
use crossbeam_channel::{Receiver, RecvTimeoutError, bounded};
use pcap_parallel::{Capture, Chunk, Report};

use crate::builder::build;
use crate::error::TableError;
use crate::schema::TableOptions;

/// A capture to be read as a packet table: one row per packet, the
/// columns of [`TableOptions`].
///
/// Each chunk's rows are built on the worker that holds the chunk, into
/// one Arrow record batch; batches come back in file order, with at most a
/// few chunks in flight, so memory stays flat in the size of the capture.
/// The same capture gives the same rows whatever the number of workers or
/// the way it is cut into chunks (only the batch boundaries differ).
///
/// ```
/// use pcap_parallel::Capture;
/// use pcap_parallel_arrow::PacketTable;
/// # let sample = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../../samples/sample.pcap")).unwrap();
/// let capture = Capture::from_bytes("sample.pcap", sample)?;
/// let batches = PacketTable::new(capture).collect()?;
/// let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
/// assert_eq!(rows, 1000);
/// assert_eq!(batches[0].schema().field(0).name(), "frame_number");
/// # Ok::<(), pcap_parallel_arrow::TableError>(())
/// ```
#[derive(Debug)]
pub struct PacketTable {
    capture: Capture,
    options: TableOptions,
}

impl PacketTable {
    /// The table of `capture` (with its options: workers, chunking, filter,
    /// packet limit, damage policy), with the default columns (and `file`
    /// for several captures read as one).
    pub fn new(capture: Capture) -> PacketTable {
        let options = TableOptions::default().for_inputs(capture.input_count());
        PacketTable { capture, options }
    }

    /// The columns and how they are stored (`file` added for several
    /// captures read as one, unless the columns were chosen).
    pub fn options(mut self, options: TableOptions) -> PacketTable {
        self.options = options.for_inputs(self.capture.input_count());
        self
    }

    /// The table's Arrow schema.
    pub fn schema(&self) -> SchemaRef {
        self.options.schema()
    }

    /// Has the workers build addresses as text as dictionaries (see
    /// [`TableOptions::batch_schema`]), for an `encode` that takes them so.
    pub(crate) fn text_dictionary(mut self) -> PacketTable {
        self.options = self.options.text_dictionary();
        self
    }

    /// The schema of the batches the workers build (`encode` takes them).
    pub(crate) fn batch_schema(&self) -> SchemaRef {
        self.options.batch_schema()
    }

    /// Builds every chunk's batches on the workers, turns them into `R`
    /// there with `encode` (an encoded Parquet row group, CSV text...), and
    /// hands the results to `deliver` in file order on the calling thread,
    /// with their row counts. Chunks without rows are left out. The first
    /// failure (of a chunk, or of `deliver`) stops the run.
    pub(crate) fn run<R, E, D>(self, encode: E, deliver: D) -> (Result<(), TableError>, Report)
    where
        R: Send,
        E: Fn(usize, Vec<RecordBatch>) -> Result<R, TableError> + Sync,
        D: FnMut(R, usize) -> Result<(), TableError>,
    {
        let (result, report, _input) = self.run_holding_input(encode, deliver);
        (result, report)
    }

    /// [`PacketTable::run`], which also hands back a hold on the capture's
    /// input ([`InputHold`]), so the caller chooses when it is released.
    fn run_holding_input<R, E, D>(
        self,
        encode: E,
        mut deliver: D,
    ) -> (Result<(), TableError>, Report, InputHold)
    where
        R: Send,
        E: Fn(usize, Vec<RecordBatch>) -> Result<R, TableError> + Sync,
        D: FnMut(R, usize) -> Result<(), TableError>,
    {
        let PacketTable { capture, options } = self;
        let schema = options.batch_schema();
        let stop = AtomicBool::new(false);
        let mut failure: Option<TableError> = None;
        let input = InputHold::of(&capture);
        let report = capture.fail_fast(true).run(
            |chunk| {
                if stop.load(Ordering::Relaxed) {
                    return Err(Box::new(TableError::ReaderGone) as pcap_parallel::BoxError);
                }
                input.keep(chunk);
                let batches = build(chunk, &options, &schema)?;
                let rows = batches.iter().map(RecordBatch::num_rows).sum();
                if rows == 0 {
                    return Ok(None);
                }
                Ok(Some((encode(chunk.index(), batches)?, rows)))
            },
            |r| {
                if failure.is_some() {
                    return;
                }
                let outcome = match r.result {
                    Ok(Some((value, rows))) => deliver(value, rows),
                    Ok(None) => Ok(()),
                    Err(f) => Err(TableError::Capture(pcap_parallel::Error::Chunk(f))),
                };
                if let Err(e) = outcome {
                    stop.store(true, Ordering::Relaxed);
                    failure = Some(e);
                }
            },
        );
        (failure.map_or(Ok(()), Err), report, input)
    }

    /// Every batch, in file order, to `each`; returns the run's report (a
    /// broken input: the batches before the fault were delivered, and the
    /// report holds the error).
    pub fn for_each_batch(
        self,
        mut each: impl FnMut(RecordBatch),
    ) -> (Result<(), TableError>, Report) {
        self.run(
            |_, batches| Ok(batches),
            |batches, _| {
                batches.into_iter().for_each(&mut each);
                Ok(())
            },
        )
    }

    /// All batches, in file order. Strict: a broken input is an error (see
    /// [`PacketTable::for_each_batch`] or [`PacketTable::reader`] to keep
    /// the rows before the fault).
    pub fn collect(self) -> Result<Vec<RecordBatch>, TableError> {
        let mut out = Vec::new();
        let (result, report) = self.for_each_batch(|b| out.push(b));
        result?;
        match report.input_error {
            Some(e) => Err(e.into()),
            None => Ok(out),
        }
    }

    /// The table as a stream of batches in file order, built in the
    /// background (a thread runs the capture; at most two batches wait
    /// beyond the chunks in flight). An Arrow [`RecordBatchReader`], ready
    /// for the Arrow C stream interface.
    ///
    /// A broken input yields the batches before the fault, then the error
    /// as the last item (a [`TableError`] inside
    /// [`ArrowError::ExternalError`]). Dropping the reader early stops the
    /// work.
    ///
    /// The stream ends as soon as the last batch and the report are ready:
    /// releasing the input (unmapping a mapped file, tens of milliseconds
    /// for a large one) happens after, on the reader's thread, and dropping
    /// the reader waits for it.
    pub fn reader(self) -> BatchReader {
        let schema = self.schema();
        let (tx, rx) = bounded::<Result<RecordBatch, ArrowError>>(2);
        let gone = Arc::new(AtomicBool::new(false));
        let gone_writer = gone.clone();
        let ended = Arc::new(OnceLock::new());
        let ended_writer = ended.clone();
        let handle = std::thread::Builder::new()
            .name("pcap-parallel-table".into())
            .spawn(move || {
                let (result, mut report, input) = self.run_holding_input(
                    |_, batches| Ok(batches),
                    |batches, _| {
                        for batch in batches {
                            if gone_writer.load(Ordering::Relaxed) {
                                return Err(TableError::ReaderGone);
                            }
                            tx.send(Ok(batch)).map_err(|_| TableError::ReaderGone)?;
                        }
                        Ok(())
                    },
                );
                let error = match result {
                    Err(TableError::ReaderGone) => None,
                    Err(e) => Some(e),
                    Ok(()) => report.input_error.take().map(TableError::Capture),
                };
                if let Some(e) = error {
                    let _ = tx.send(Err(ArrowError::ExternalError(Box::new(e))));
                }
                // The report first, then the end of the stream: the reader
                // has all it needs before the input is released.
                let _ = ended_writer.set(report);
                drop(tx);
                drop(input);
            })
            .expect("a thread can be started");
        BatchReader {
            schema,
            rx,
            gone,
            handle: Some(handle),
            ended,
        }
    }
}

/// The rows of one chunk (a chunk of a [`Capture`], or a partition read on
/// a cluster node by `pcap_parallel::partition::read_partition`) as record
/// batches of `options`' columns: what [`PacketTable`] builds on each worker.
/// `frame_number` counts from the chunk's first packet number.
///
/// ```
/// use pcap_parallel::{Capture, Split};
/// use pcap_parallel_arrow::{TableOptions, chunk_batches};
/// # let sample = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../../samples/sample.pcap")).unwrap();
/// let capture = Capture::from_bytes("sample.pcap", sample)?.split(Split::Chunks(4));
/// let options = TableOptions::default();
/// let firsts = capture.try_map(|chunk| {
///     let batches = chunk_batches(chunk, &options)?;
///     Ok::<_, pcap_parallel_arrow::TableError>(batches[0].column(0).as_any()
///         .downcast_ref::<arrow_array::UInt64Array>().unwrap().value(0))
/// })?;
/// assert_eq!(firsts.len(), 4);
/// assert_eq!(firsts[0], 1); // frame numbers count through the capture
/// assert!(firsts[1] > 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn chunk_batches(
    chunk: &Chunk,
    options: &TableOptions,
) -> Result<Vec<RecordBatch>, TableError> {
    Ok(build(chunk, options, &options.schema())?)
}

/// The batches of a [`PacketTable`], streamed in file order; see
/// [`PacketTable::reader`].
pub struct BatchReader {
    schema: SchemaRef,
    rx: Receiver<Result<RecordBatch, ArrowError>>,
    gone: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
    /// The run's report, set by its thread just before the stream ends.
    ended: Arc<OnceLock<Report>>,
}

impl std::fmt::Debug for BatchReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BatchReader")
            .field("schema", &self.schema)
            .finish_non_exhaustive()
    }
}

impl BatchReader {
    /// What the run did (packets, damage skipped under `OnError::Skip`),
    /// once the reader has been read to its end; `None` before. Its
    /// `input_error` is empty: the error was the reader's last item.
    pub fn report(&self) -> Option<&Report> {
        self.ended.get()
    }

    /// The next item, waiting at most `timeout`: [`Poll::Pending`] if none
    /// came in time (for a caller with something else to do meanwhile, such
    /// as answering Ctrl-C), otherwise what [`Iterator::next`] gives.
    ///
    /// ```
    /// use std::task::Poll;
    /// use std::time::Duration;
    /// use pcap_parallel::Capture;
    /// use pcap_parallel_arrow::PacketTable;
    /// # let sample = concat!(env!("CARGO_MANIFEST_DIR"), "/../../samples/sample.pcap");
    /// let mut reader = PacketTable::new(Capture::open(sample)?).reader();
    /// let mut rows = 0;
    /// loop {
    ///     match reader.next_timeout(Duration::from_millis(100)) {
    ///         Poll::Pending => continue, // e.g. check for an interrupt
    ///         Poll::Ready(Some(batch)) => rows += batch?.num_rows(),
    ///         Poll::Ready(None) => break,
    ///     }
    /// }
    /// assert_eq!(rows, 1000);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn next_timeout(
        &mut self,
        timeout: Duration,
    ) -> Poll<Option<Result<RecordBatch, ArrowError>>> {
        match self.rx.recv_timeout(timeout) {
            Ok(item) => Poll::Ready(Some(item)),
            Err(RecvTimeoutError::Timeout) => Poll::Pending,
            Err(RecvTimeoutError::Disconnected) => {
                self.ended();
                Poll::Ready(None)
            }
        }
    }

    /// At the end of the stream: the run's thread has set the report (it
    /// may still be releasing the input; [`Drop`] waits for that). A thread
    /// that ended without one panicked: its panic goes on here.
    fn ended(&mut self) {
        if self.ended.get().is_none()
            && let Some(Err(panic)) = self.handle.take().map(JoinHandle::join)
        {
            std::panic::resume_unwind(panic);
        }
    }
}

impl Iterator for BatchReader {
    type Item = Result<RecordBatch, ArrowError>;

    fn next(&mut self) -> Option<Self::Item> {
        match self.rx.recv() {
            Ok(item) => Some(item),
            Err(_) => {
                self.ended();
                None
            }
        }
    }
}

impl RecordBatchReader for BatchReader {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }
}

impl Drop for BatchReader {
    fn drop(&mut self) {
        self.gone.store(true, Ordering::Relaxed);
        // Unblock the producer, then wait for the workers to stop.
        while self.rx.try_recv().is_ok() {}
        if let Some(h) = self.handle.take() {
            drop(std::mem::replace(&mut self.rx, crossbeam_channel::never()));
            let _ = h.join();
        }
    }
}

/// A hold on a capture's input: while it lives, the input (the map of a
/// mapped file, the bytes of an in-memory capture) is not released, whoever
/// else lets go of it. It is a clone of the run's first chunk, which shares
/// the whole input; a streamed capture's chunks own just their own bytes, so
/// for those nothing is held (holding one would add a chunk's memory).
struct InputHold {
    mapped: bool,
    chunk: OnceLock<Chunk>,
}

impl InputHold {
    fn of(capture: &Capture) -> InputHold {
        InputHold {
            mapped: capture.is_mapped(),
            chunk: OnceLock::new(),
        }
    }

    /// Called with each chunk, on the workers: keeps the first.
    fn keep(&self, chunk: &Chunk) {
        if self.mapped {
            self.chunk.get_or_init(|| chunk.clone());
        }
    }
}
