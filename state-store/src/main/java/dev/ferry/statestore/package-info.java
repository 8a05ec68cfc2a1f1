/**
 * The node's durable state: one LMDB environment (through lmdbjava) holding named tables of byte
 * values and the processes' output logs.
 *
 * <p>Contract:
 *
 * <ul>
 *   <li>Every single operation, and every {@link dev.ferry.statestore.FerryStore#write write}
 *       batch, is atomic: after a crash it is there entirely or not at all.
 *   <li>A write is <em>durable</em> only once {@link dev.ferry.statestore.FerryStore#sync()} has
 *       returned after it. The environment runs with {@code MDB_NOSYNC}; callers sync before they
 *       acknowledge anything another node relies on (a checkpoint, a migration commit).
 *   <li>Any number of threads may read and write at once; readers never block writers, writers are
 *       serialized. A read sees one consistent snapshot.
 *   <li>Failures surface as {@link dev.ferry.statestore.StoreException} (a full map or disk as
 *       {@link dev.ferry.statestore.StoreFullException}); a failed operation writes nothing and
 *       leaves the store usable. No lmdbjava exception escapes.
 * </ul>
 *
 * <p>Not provided: schemas, secondary indexes, compaction, or replication to other nodes (the
 * transport moves data; this store only keeps it). The JVM must run with {@code --add-opens
 * java.base/java.nio=ALL-UNNAMED --add-opens java.base/sun.nio.ch=ALL-UNNAMED} for lmdbjava.
 */
package dev.ferry.statestore;
