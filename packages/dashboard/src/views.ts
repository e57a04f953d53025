// Mission Control's views, one file per tab; each renders from the page's state and asks for actions.
export { agents } from './agents-view.js';
export { approvals } from './approvals-view.js';
export { audit } from './audit-view.js';
export { overview } from './overview-view.js';
export { stateView } from './state-view.js';
export { tasks } from './tasks-view.js';
export type { Actions } from './view-parts.js';
