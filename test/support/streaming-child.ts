// A streaming service (streaming-frameworks.ts) in a process of its own, so that its resident set
// size is the service's alone. Bundled with esbuild by the test (bundleStreamingChild) and forked with
// --expose-gc; driven over IPC:
//   { type: 'start', framework, options } -> { type: 'started', url }
//   { type: 'baseline' }  -> collects garbage, takes the RSS as the baseline -> { type: 'baseline', rss }
//   { type: 'peak' }      -> { type: 'peak', baseline, peak } (the highest RSS sampled since the baseline)
//   { type: 'close' }     -> closes the server and exits
import { startStreamingFramework, type StreamingService } from './streaming-frameworks';
import type { Framework } from './frameworks';

const gc = (globalThis as { gc?: () => void }).gc;
let service: StreamingService | undefined;
let baseline = 0;
let peak = 0;

// Sampled often enough to see a buffer of a few MiB come and go.
setInterval(() => {
  const rss = process.memoryUsage.rss();
  if (rss > peak) peak = rss;
}, 2).unref();

process.on('message', (message: { type: string; framework?: Framework; options?: Record<string, unknown> }) => {
  void (async () => {
    switch (message.type) {
      case 'start':
        service = await startStreamingFramework(message.framework!, (url) => ({ ...message.options, audiences: [url] }) as never);
        process.send!({ type: 'started', url: service.url });
        break;
      case 'baseline':
        gc?.();
        gc?.();
        baseline = peak = process.memoryUsage.rss();
        process.send!({ type: 'baseline', rss: baseline });
        break;
      case 'peak':
        process.send!({ type: 'peak', baseline, peak: Math.max(peak, process.memoryUsage.rss()) });
        break;
      case 'close':
        await service?.close();
        process.exit(0);
    }
  })().catch((error: unknown) => {
    process.send!({ type: 'error', message: String((error as Error).stack ?? error) });
  });
});
