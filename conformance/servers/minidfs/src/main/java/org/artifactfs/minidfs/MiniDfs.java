package org.artifactfs.minidfs;

import java.io.File;
import java.io.IOException;
import java.io.InputStream;
import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.CountDownLatch;

import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.Path;
import org.apache.hadoop.fs.permission.FsPermission;
import org.apache.hadoop.hdfs.DFSConfigKeys;
import org.apache.hadoop.hdfs.HdfsConfiguration;
import org.apache.hadoop.hdfs.MiniDFSCluster;
import org.apache.hadoop.security.UserGroupInformation;

/**
 * One NameNode and one DataNode in this JVM, bound to 127.0.0.1 on the ports the caller chose.
 *
 * <p>Prints {@code READY hdfs://127.0.0.1:<port>} once the NameNode is out of safe mode and the
 * DataNode has registered (the test run's readiness probe waits for that line), then runs until
 * SIGTERM (a shutdown hook stops the cluster) or, with {@code --exit-on-stdin-close}, until its
 * standard input closes, so an orphaned cluster never outlives the process that started it.
 *
 * <p>{@code --conf FILE} adds a Hadoop configuration file last (its keys win). When it turns on
 * Kerberos ({@code hadoop.security.authentication=kerberos}, with the NameNode's principal and keytab),
 * this JVM logs in from that keytab before the cluster starts, as Hadoop's own secure tests do, and
 * makes the root directory world-writable with the sticky bit (as /tmp) so each test principal can
 * create its own directories there while the permission checks stay on.
 *
 * <p>{@code --datanode-hostname NAME} makes the DataNode advertise NAME instead of 127.0.0.1: a
 * client with {@code dfs.client.use.datanode.hostname=true} then reaches the DataNode's data port
 * at NAME, where a test can put a relay (a fault-injecting proxy on another loopback address).
 *
 * <p>Usage: {@code MiniDfs --base-dir DIR --namenode-port P --namenode-http-port P
 * --datanode-port P --datanode-http-port P --datanode-ipc-port P [--block-size BYTES]
 * [--datanode-hostname NAME] [--conf FILE] [--exit-on-stdin-close]}
 */
public final class MiniDfs {
    private static final String HOST = "127.0.0.1";

    private MiniDfs() {}

    public static void main(String[] argv) throws Exception {
        Map<String, String> args = parse(argv);
        File baseDir = new File(required(args, "--base-dir"));
        int namenodePort = port(args, "--namenode-port");

        Configuration conf = new HdfsConfiguration();
        conf.set(MiniDFSCluster.HDFS_MINIDFS_BASEDIR, baseDir.getAbsolutePath());
        conf.set(DFSConfigKeys.DFS_NAMENODE_HTTP_ADDRESS_KEY, HOST + ":" + port(args, "--namenode-http-port"));
        conf.set(DFSConfigKeys.DFS_DATANODE_ADDRESS_KEY, HOST + ":" + port(args, "--datanode-port"));
        conf.set(DFSConfigKeys.DFS_DATANODE_HTTP_ADDRESS_KEY, HOST + ":" + port(args, "--datanode-http-port"));
        conf.set(DFSConfigKeys.DFS_DATANODE_IPC_ADDRESS_KEY, HOST + ":" + port(args, "--datanode-ipc-port"));
        conf.setInt(DFSConfigKeys.DFS_REPLICATION_KEY, 1);
        // Small blocks so a few-MiB test file spans several blocks (the multi-block read/write paths).
        long blockSize = Long.parseLong(args.getOrDefault("--block-size", String.valueOf(1024 * 1024)));
        conf.setLong(DFSConfigKeys.DFS_BLOCK_SIZE_KEY, blockSize);
        conf.setLong(DFSConfigKeys.DFS_NAMENODE_MIN_BLOCK_SIZE_KEY, Math.min(blockSize, 1024 * 1024));
        // One DataNode: never try to replace it in a write pipeline.
        conf.set("dfs.client.block.write.replace-datanode-on-failure.enable", "false");
        String datanodeHostname = args.get("--datanode-hostname");
        if (datanodeHostname != null) {
            conf.set(DFSConfigKeys.DFS_DATANODE_HOST_NAME_KEY, datanodeHostname);
        }
        if (args.containsKey("--conf")) {
            conf.addResource(new Path(new File(args.get("--conf")).getAbsolutePath()));
        }
        boolean secure = "kerberos".equals(conf.get("hadoop.security.authentication"));
        if (secure) {
            UserGroupInformation.setConfiguration(conf);
            UserGroupInformation.loginUserFromKeytab(
                    conf.get(DFSConfigKeys.DFS_NAMENODE_KERBEROS_PRINCIPAL_KEY),
                    conf.get(DFSConfigKeys.DFS_NAMENODE_KEYTAB_FILE_KEY));
        }

        MiniDFSCluster cluster = new MiniDFSCluster.Builder(conf)
                .nameNodePort(namenodePort)
                .nameNodeHttpPort(port(args, "--namenode-http-port"))
                .numDataNodes(1)
                .checkDataNodeAddrConfig(true)
                // MiniDFSCluster forces the DataNode's hostname to 127.0.0.1 unless told to keep ours.
                .checkDataNodeHostConfig(datanodeHostname != null)
                .format(true)
                .build();
        CountDownLatch stopped = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            cluster.shutdown(true);
            stopped.countDown();
        }, "minidfs-shutdown"));

        cluster.waitActive();
        cluster.waitClusterUp();
        if (secure) {
            cluster.getFileSystem().setPermission(new Path("/"), new FsPermission((short) 01777));
        }
        System.out.println("READY hdfs://" + HOST + ":" + cluster.getNameNodePort());
        System.out.flush();

        if (args.containsKey("--exit-on-stdin-close")) {
            drain(System.in);
            System.exit(0);
        }
        stopped.await();
    }

    private static void drain(InputStream input) {
        byte[] buffer = new byte[4096];
        try {
            while (input.read(buffer) >= 0) {
                // keep reading until the parent closes our stdin
            }
        } catch (IOException closed) {
            // a broken pipe means the parent is gone: stop as well
        }
    }

    private static Map<String, String> parse(String[] argv) {
        Map<String, String> args = new HashMap<>();
        for (int i = 0; i < argv.length; i++) {
            String name = argv[i];
            if (!name.startsWith("--")) {
                throw new IllegalArgumentException("unexpected argument " + name);
            }
            if (name.equals("--exit-on-stdin-close")) {
                args.put(name, "true");
            } else if (i + 1 < argv.length) {
                args.put(name, argv[++i]);
            } else {
                throw new IllegalArgumentException(name + " needs a value");
            }
        }
        return args;
    }

    private static String required(Map<String, String> args, String name) {
        String value = args.get(name);
        if (value == null) {
            throw new IllegalArgumentException("missing " + name);
        }
        return value;
    }

    private static int port(Map<String, String> args, String name) {
        int port = Integer.parseInt(required(args, name));
        if (port <= 0 || port > 65535) {
            throw new IllegalArgumentException(name + " must be a port number, got " + port);
        }
        return port;
    }
}
