package dev.ferry.node.cluster;

import dev.ferry.transport.proto.NodeEvent;
import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.cluster.ClusterEvent;
import org.apache.pekko.cluster.Member;
import org.apache.pekko.cluster.typed.Cluster;
import org.apache.pekko.cluster.typed.Subscribe;

/**
 * Publishes cluster membership changes to the event stream. Each change is published by the cluster
 * leader only (and a node's own arrival by the node itself), so subscribers see it once in the
 * usual case; around a leader change a change may be reported twice or not at all.
 */
final class MembershipEvents {
  private MembershipEvents() {}

  static Behavior<ClusterEvent.ClusterDomainEvent> create(ClusterRuntime rt) {
    return Behaviors.setup(
        ctx -> {
          Cluster cluster = Cluster.get(ctx.getSystem());
          cluster
              .subscriptions()
              .tell(
                  Subscribe.create(
                      ctx.getSelf().<ClusterEvent.MemberEvent>narrow(),
                      ClusterEvent.MemberEvent.class));
          cluster
              .subscriptions()
              .tell(
                  Subscribe.create(
                      ctx.getSelf().<ClusterEvent.ReachabilityEvent>narrow(),
                      ClusterEvent.ReachabilityEvent.class));
          return Behaviors.receive(ClusterEvent.ClusterDomainEvent.class)
              .onMessage(
                  ClusterEvent.ClusterDomainEvent.class,
                  e -> {
                    Member m;
                    String status;
                    if (e instanceof ClusterEvent.MemberUp up) {
                      m = up.member();
                      status = "up";
                    } else if (e instanceof ClusterEvent.MemberLeft left) {
                      m = left.member();
                      status = "leaving";
                    } else if (e instanceof ClusterEvent.MemberDowned down) {
                      m = down.member();
                      status = "down";
                    } else if (e instanceof ClusterEvent.MemberRemoved removed) {
                      m = removed.member();
                      status = "removed";
                    } else if (e instanceof ClusterEvent.UnreachableMember u) {
                      m = u.member();
                      status = "unreachable";
                    } else if (e instanceof ClusterEvent.ReachableMember r) {
                      m = r.member();
                      status = "reachable";
                    } else {
                      return Behaviors.same();
                    }
                    // Replica sets of this node's paging files may need a new member.
                    rt.processes.paging().membershipChanged();
                    boolean self = m.address().equals(cluster.selfMember().address());
                    boolean leader =
                        cluster.state().getLeader() != null
                            && cluster.state().getLeader().equals(cluster.selfMember().address());
                    if ((self && status.equals("up")) || (leader && !self)) {
                      rt.publish(
                          rt.event()
                              .setNodeEvent(
                                  NodeEvent.newBuilder()
                                      .setAddress(m.address().toString())
                                      .setStatus(status)
                                      .setName(self ? rt.nodeName : m.address().hostPort()))
                              .build());
                    }
                    return Behaviors.same();
                  })
              .build();
        });
  }
}
