// nginx as a reference proxy for bench/proxy.ts and bench/tls.ts: the Debian package's binary with a config of
// our own in a temp directory (one worker, upstream keep-alive), never the system's config, pid file or logs.
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export const NGINX_BIN = '/usr/sbin/nginx';

export interface Nginx {
  /** The master's pid; its worker is its child. */
  pid: number;
  dir: string;
  stop(): Promise<void>;
}

export function nginxInstalled(): boolean {
  return existsSync(NGINX_BIN);
}

/** What every server block does: forward to the backend, HTTP/1.1 with keep-alive, X-Forwarded-* set. */
const LOCATION = `location / {
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $http_host;
      proxy_set_header X-Forwarded-For $remote_addr;
      proxy_set_header X-Forwarded-Proto $scheme;
      proxy_set_header X-Forwarded-Host $http_host;
    }`;

/** An HTTPS listener beside the plain one: HTTP/2 and HTTP/1.1 (ALPN) with this certificate and key (PEM files). */
export interface NginxTls {
  port: number;
  cert: string;
  key: string;
}

/** The TLS server block: the same location, the same certificate as the proxy it is compared with. */
function tlsServer(tls: NginxTls | undefined): string {
  if (!tls) return '';
  return `
  server {
    listen 127.0.0.1:${tls.port} ssl http2;
    # TLS 1.3 as well: nginx before 1.23.4 offers TLS 1.2 at most unless told, and the proxy it is compared
    # with speaks 1.3 (a full 1.3 handshake costs either server more than a 1.2 one).
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_certificate ${tls.cert};
    ssl_certificate_key ${tls.key};
    ${LOCATION}
  }`;
}

/**
 * The same job as the switchboard proxy: forward every path unchanged, set X-Forwarded-*, log each
 * request (buffered, as pino's async log is). Upstream keepalive 64 idle connections, HTTP/1.1.
 */
function config(dir: string, port: number, backendPort: number, tls?: NginxTls): string {
  return `worker_processes 1;
daemon off;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 4096; }
http {
  access_log ${dir}/access.log combined buffer=64k flush=1s;
  client_body_temp_path ${dir}/client_body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  keepalive_requests 100000;
  upstream backend {
    server 127.0.0.1:${backendPort};
    keepalive 64;
  }
  server {
    listen 127.0.0.1:${port};
    ${LOCATION}
  }${tlsServer(tls)}
}
`;
}

export async function startNginx(port: number, backendPort: number, tls?: NginxTls): Promise<Nginx> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sb-nginx-'));
  // Run as root, nginx's worker drops to "nobody", which must reach the temp paths inside.
  chmodSync(dir, 0o755);
  const conf = path.join(dir, 'nginx.conf');
  writeFileSync(conf, config(dir, port, backendPort, tls));
  // -e: the error log before the config is read would otherwise be the system's.
  const child: ChildProcess = spawn(NGINX_BIN, ['-p', dir, '-c', conf, '-e', path.join(dir, 'error.log')], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (d) => (stderr += d.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const deadline = Date.now() + 10_000;
  while (!existsSync(path.join(dir, 'nginx.pid'))) {
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      const log = existsSync(path.join(dir, 'error.log')) ? readFileSync(path.join(dir, 'error.log'), 'utf8') : '';
      rmSync(dir, { recursive: true, force: true });
      throw new Error(`nginx did not start: ${stderr}${log}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    pid: child.pid!,
    dir,
    async stop() {
      if (child.exitCode === null) {
        // SIGTERM: fast shutdown of master and worker.
        child.kill('SIGTERM');
        await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
        if (child.exitCode === null) child.kill('SIGKILL');
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
