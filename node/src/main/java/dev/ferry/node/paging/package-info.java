/**
 * Paging files (the gfvm strategy): a paged process's memory backed by a file in the node's store,
 * replicated on other nodes, with a background flusher and replica-local page-in after a move.
 */
package dev.ferry.node.paging;
