package main

import (
	"fmt"
	"testing"
	"time"
)

// TestHASuspend: a virtual server with ha_suspend whose address is not on
// this host has its checks suspended, so its failing real server stays;
// the same failure under a virtual server without it takes the real
// server out.
func TestHASuspend(t *testing.T) {
	vport, dead1, dead2 := freePort(t), freePort(t), freePort(t)
	conf := fmt.Sprintf(`virtual_server 192.0.2.77 %d {
    protocol TCP
    delay_loop 1
    ha_suspend
    real_server 127.0.0.1 %d {
        TCP_CHECK {
            connect_timeout 1
            retry 0
        }
    }
}
virtual_server 127.0.0.1 %d {
    protocol TCP
    delay_loop 1
    ha_suspend
    real_server 127.0.0.1 %d {
        TCP_CHECK {
            connect_timeout 1
            retry 0
        }
    }
}
`, vport, dead1, vport, dead2)
	startDaemonD(t, conf, "-C")
	d1, d2 := fmt.Sprintf("127.0.0.1:%d", dead1), fmt.Sprintf("127.0.0.1:%d", dead2)
	waitTable(t, "the local virtual server's failing real server leaves", 5*time.Second, func(out string) bool {
		return destLine(out, d2) == nil
	})
	time.Sleep(1500 * time.Millisecond) // more than a delay_loop: a check would have run
	_, out, _ := runCmd(t, "ipvsadm", "-Ln")
	if destLine(out, d1) == nil {
		t.Fatalf("the suspended virtual server's real server was checked and removed:\n%s", out)
	}
}
