import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.concurrent.ExecutionException;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.AlterConfigOp;
import org.apache.kafka.clients.admin.ListTopicsOptions;
import org.apache.kafka.clients.admin.ConfigEntry;
import org.apache.kafka.clients.admin.NewPartitions;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.common.KafkaFuture;
import org.apache.kafka.common.TopicPartitionInfo;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.config.TopicConfig;
import org.apache.kafka.common.errors.GroupIdNotFoundException;
import org.apache.kafka.common.errors.RetriableException;
import org.apache.kafka.common.errors.TopicExistsException;

/**
 * Creates the dev/test topics in one JVM, idempotently, and waits until every
 * partition has a leader and the group coordinator is up (so the broker is
 * ready for producers and consumer groups).
 *
 * <pre>
 * java -cp CLASSES:LIBS/* EnsureTopics [--replicas=N] BOOTSTRAP TIMEOUT_MS NAME:PARTITIONS:RETENTION_MS...
 * </pre>
 *
 * --replicas=N (default 1) is the replication factor of created topics; above
 * 1 they also get min.insync.replicas=N-1 (a cluster of 3: 2, so one broker
 * may be lost without refusing acks=all writes), and "ready" also means every
 * replica is in sync (after a broker restart: it has caught up).
 *
 * A topic that already exists is fine: its retention is set to the wanted
 * value and, if it has fewer partitions than wanted, partitions are added (a
 * topic with more partitions than wanted is an error: Kafka cannot shrink it).
 * Retries while the broker is still starting, until TIMEOUT_MS has passed.
 * Exit status: 0 ready, 1 failed (reason on stderr), 2 usage.
 */
public final class EnsureTopics {
    private record Spec(String name, int partitions, long retentionMs) {}

    /** Replication factor of created topics (--replicas=N). */
    private static short replicas = 1;

    public static void main(String[] args) {
        int first = 0;
        if (args.length > 0 && args[0].startsWith("--replicas=")) {
            replicas = Short.parseShort(args[0].substring("--replicas=".length()));
            first = 1;
        }
        if (args.length - first < 3 || replicas < 1) {
            System.err.println("usage: EnsureTopics [--replicas=N] BOOTSTRAP TIMEOUT_MS NAME:PARTITIONS:RETENTION_MS...");
            System.exit(2);
        }
        String bootstrap = args[first];
        long deadline = System.currentTimeMillis() + Long.parseLong(args[first + 1]);
        List<Spec> specs = new ArrayList<>();
        for (int i = first + 2; i < args.length; i++) {
            String[] p = args[i].split(":");
            if (p.length != 3) {
                System.err.println("bad topic spec '" + args[i] + "' (want NAME:PARTITIONS:RETENTION_MS)");
                System.exit(2);
            }
            specs.add(new Spec(p[0], Integer.parseInt(p[1]), Long.parseLong(p[2])));
        }

        Properties props = new Properties();
        props.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        props.put(AdminClientConfig.CLIENT_ID_CONFIG, "ensure-topics");
        props.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, "5000");
        props.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, "10000");
        props.put(AdminClientConfig.RETRY_BACKOFF_MS_CONFIG, "100");
        props.put(AdminClientConfig.RECONNECT_BACKOFF_MS_CONFIG, "50");
        props.put(AdminClientConfig.RECONNECT_BACKOFF_MAX_MS_CONFIG, "200");

        int status = 1;
        try (Admin admin = Admin.create(props)) {
            String last = "no attempt made";
            while (true) {
                try {
                    ensure(admin, specs);
                    String missing = leaderless(admin, specs);
                    if (missing == null) {
                        missing = warmGroupCoordinator(admin);
                    }
                    if (missing == null) {
                        System.out.println("topics ready:" + summary(specs));
                        status = 0;
                        break;
                    }
                    last = missing;
                } catch (ExecutionException e) {
                    Throwable cause = e.getCause() != null ? e.getCause() : e;
                    if (!(cause instanceof RetriableException)) {
                        System.err.println("topic setup failed: " + cause);
                        break;
                    }
                    last = cause.toString();
                } catch (IllegalStateException e) {
                    System.err.println("topic setup failed: " + e.getMessage());
                    break;
                }
                if (System.currentTimeMillis() > deadline) {
                    System.err.println("topic setup timed out on " + bootstrap + ": " + last);
                    break;
                }
                Thread.sleep(100);
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        System.exit(status);
    }

    /** Creates missing topics; fixes retention and grows partitions of existing ones. */
    private static void ensure(Admin admin, List<Spec> specs) throws ExecutionException, InterruptedException {
        Set<String> existing = admin.listTopics().names().get();
        List<NewTopic> create = new ArrayList<>();
        List<Spec> present = new ArrayList<>();
        for (Spec s : specs) {
            if (existing.contains(s.name())) {
                present.add(s);
            } else {
                Map<String, String> configs = new HashMap<>();
                configs.put(TopicConfig.RETENTION_MS_CONFIG, Long.toString(s.retentionMs()));
                if (replicas > 1) {
                    configs.put(TopicConfig.MIN_IN_SYNC_REPLICAS_CONFIG, Integer.toString(replicas - 1));
                }
                create.add(new NewTopic(s.name(), s.partitions(), replicas).configs(configs));
            }
        }
        if (!create.isEmpty()) {
            for (Map.Entry<String, KafkaFuture<Void>> e : admin.createTopics(create).values().entrySet()) {
                try {
                    e.getValue().get();
                } catch (ExecutionException ex) {
                    if (!(ex.getCause() instanceof TopicExistsException)) {
                        throw ex;
                    }
                }
            }
        }
        if (present.isEmpty()) {
            return;
        }
        List<String> names = present.stream().map(Spec::name).toList();
        Map<String, TopicDescription> desc = admin.describeTopics(names).allTopicNames().get();
        Map<String, NewPartitions> grow = new HashMap<>();
        Map<ConfigResource, Collection<AlterConfigOp>> retention = new HashMap<>();
        for (Spec s : present) {
            int have = desc.get(s.name()).partitions().size();
            int replicasHave = desc.get(s.name()).partitions().get(0).replicas().size();
            if (replicasHave != replicas) {
                throw new IllegalStateException("topic " + s.name() + " has " + replicasHave
                        + " replicas, not the " + replicas + " wanted; delete it or the data dir");
            }
            if (have > s.partitions()) {
                throw new IllegalStateException("topic " + s.name() + " has " + have
                        + " partitions, more than the " + s.partitions() + " wanted; delete it or the data dir");
            }
            if (have < s.partitions()) {
                grow.put(s.name(), NewPartitions.increaseTo(s.partitions()));
            }
            retention.put(new ConfigResource(ConfigResource.Type.TOPIC, s.name()),
                    List.of(new AlterConfigOp(new ConfigEntry(TopicConfig.RETENTION_MS_CONFIG,
                            Long.toString(s.retentionMs())), AlterConfigOp.OpType.SET)));
        }
        if (!grow.isEmpty()) {
            admin.createPartitions(grow).all().get();
        }
        admin.incrementalAlterConfigs(retention).all().get();
    }

    /**
     * Returns a description of the first partition without a leader (or, with
     * --replicas above 1, with a replica out of sync), or null when all are fine.
     */
    private static String leaderless(Admin admin, List<Spec> specs) throws ExecutionException, InterruptedException {
        List<String> names = specs.stream().map(Spec::name).toList();
        Map<String, TopicDescription> desc = admin.describeTopics(names).allTopicNames().get();
        for (Spec s : specs) {
            List<TopicPartitionInfo> parts = desc.get(s.name()).partitions();
            if (parts.size() < s.partitions()) {
                return s.name() + " has " + parts.size() + " of " + s.partitions() + " partitions";
            }
            for (TopicPartitionInfo p : parts) {
                if (p.leader() == null || p.leader().isEmpty()) {
                    return s.name() + "-" + p.partition() + " has no leader yet";
                }
                if (p.isr().size() < p.replicas().size()) {
                    return s.name() + "-" + p.partition() + " has " + p.isr().size() + " of "
                            + p.replicas().size() + " replicas in sync";
                }
            }
        }
        return null;
    }

    /**
     * Asks for a consumer group's coordinator, which makes the broker create
     * __consumer_offsets now instead of on the first consumer's join (saves
     * that consumer a few seconds). Returns null when done, else what is missing.
     */
    private static String warmGroupCoordinator(Admin admin) throws ExecutionException, InterruptedException {
        try {
            admin.describeConsumerGroups(List.of("ensure-topics-warmup")).all().get();
        } catch (ExecutionException e) {
            if (!(e.getCause() instanceof GroupIdNotFoundException)) {
                throw e;
            }
        }
        Set<String> internal = admin.listTopics(new ListTopicsOptions().listInternal(true)).names().get();
        if (!internal.contains("__consumer_offsets")) {
            return "__consumer_offsets not created yet";
        }
        return null;
    }

    private static String summary(List<Spec> specs) {
        StringBuilder sb = new StringBuilder();
        for (Spec s : specs) {
            sb.append(' ').append(s.name()).append('(').append(s.partitions()).append(')');
        }
        return sb.toString();
    }
}
