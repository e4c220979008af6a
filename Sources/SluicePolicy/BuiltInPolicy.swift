/// The built-in rules, written in the same YAML a user writes, so that everything the defaults do can be read,
/// restated and overridden as data. `samples/policy.yaml` restates them with comments; a test keeps the two the same
/// and another parses this text on every run.
enum BuiltInPolicy {
    static let yaml = """
        include_builtin: false
        actions:
          low: allow
          medium: alert
          high: hold
          critical: block
        rules:
          # critical
          - name: rm-root
            risk: critical
            shell:
              program: [rm]
              flags_all: ["r|R|recursive"]
              args_any: ["/", '/\\*', "--no-preserve-root"]
          - name: mkfs
            risk: critical
            shell:
              program: [mkfs, "mkfs.*", mke2fs]
          - name: dd-to-disk
            risk: critical
            shell:
              program: [dd]
              args_any: ["of=/dev/sd*", "of=/dev/nvme*", "of=/dev/vd*", "of=/dev/hd*", "of=/dev/xvd*",
                         "of=/dev/mmcblk*", "of=/dev/disk/*", "of=/dev/mapper/*", "of=/dev/dm-*", "of=/dev/md*"]
          - name: redirect-to-disk
            risk: critical
            shell:
              redirects_any: ["/dev/sd*", "/dev/nvme*", "/dev/vd*", "/dev/hd*", "/dev/xvd*", "/dev/mmcblk*",
                              "/dev/disk/*", "/dev/mapper/*", "/dev/dm-*", "/dev/md*"]
          - name: wipe-disk
            risk: critical
            shell:
              program: [wipefs, shred, blkdiscard]
              args_any: ["/dev/sd*", "/dev/nvme*", "/dev/vd*", "/dev/hd*", "/dev/xvd*", "/dev/mmcblk*",
                         "/dev/disk/*", "/dev/mapper/*", "/dev/dm-*", "/dev/md*"]
          - name: fork-bomb
            risk: critical
            shell:
              shape: fork-bomb
          - name: drop-database
            risk: critical
            sql:
              statement: [DROP, "DATABASE|SCHEMA"]
          - name: truncate
            risk: critical
            sql:
              statement: [TRUNCATE]
          - name: delete-without-where
            risk: critical
            sql:
              statement: [DELETE]
              without: [WHERE]
          - name: update-without-where
            risk: critical
            sql:
              statement: [UPDATE]
              without: [WHERE]
          # high
          - name: shutdown
            risk: high
            shell:
              - program: [shutdown, reboot, halt, poweroff]
              - program: [init, telinit]
                args_any: ["0", "6"]
              - program: [systemctl]
                args_any: [poweroff, reboot, halt, kexec]
          - name: iptables-flush
            risk: high
            shell:
              - program: [iptables, ip6tables, "iptables-legacy", "iptables-nft", "ip6tables-legacy", "ip6tables-nft"]
                flags_any: ["F|flush"]
              - program: [nft]
                args_all: [flush, ruleset]
          - name: chmod-777-root
            risk: high
            shell:
              program: [chmod]
              flags_all: ["R|recursive"]
              args_all: ["777|0777|a+rwx|ugo+rwx|a=rwx|ugo=rwx", '/|/\\*']
          - name: chown-root
            risk: high
            shell:
              program: [chown, chgrp]
              flags_all: ["R|recursive"]
              args_any: ["/", '/\\*']
          - name: rm-system-dir
            risk: high
            shell:
              program: [rm]
              flags_all: ["r|R|recursive"]
              args_any: [/bin, /boot, /dev, /etc, /home, /lib, /lib32, /lib64, /opt, /root, /sbin, /srv, /usr, /var]
          - name: drop-table
            risk: high
            sql:
              statement: [DROP, TABLE]
          - name: alter-drop
            risk: high
            sql:
              statement: [ALTER]
              contains: [DROP]
          # medium
          - name: pipe-to-shell
            risk: medium
            shell:
              program: [curl, wget, fetch]
              pipe_to: [sh, bash, zsh, dash, ksh, mksh, ash, fish, "python*", perl, ruby, node, php]
          - name: stdin-to-shell
            risk: medium
            shell:
              pipe_to: [sh, bash, zsh, dash, ksh, mksh, ash, fish]
          - name: sudo
            risk: medium
            shell:
              program: [sudo, doas, pkexec]
          - name: su
            risk: medium
            shell:
              program: [su, runuser]
          - name: passwd
            risk: medium
            shell:
              program: [passwd, chpasswd]
          - name: grant
            risk: medium
            sql:
              statement: [GRANT]
          - name: create-user
            risk: medium
            sql:
              statement: [CREATE, "OR?", "REPLACE?", "USER|ROLE"]
        """
}
