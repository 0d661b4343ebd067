// Installs every oracle the suite uses in one apt-get call (each test still
// calls requireTool for the tools it needs, and fails naming the package).
import { TOOL_PACKAGES, aptInstall, which } from './tools.js';

const missing = new Set<string>();
for (const [tool, pkg] of Object.entries(TOOL_PACKAGES)) if (!which(tool)) missing.add(pkg);
if (missing.size) {
  console.log(`installing oracle tools: ${[...missing].join(' ')}`);
  if (!aptInstall([...missing])) {
    console.log('apt-get install failed; tests needing these tools will fail and name the package');
  }
}
