import type { IRequest } from 'itty-router'
import type { Ctx } from '../http/context'
export async function list(_req: IRequest, _c: Ctx): Promise<Response> { return new Response('todo', { status: 501 }) }
export const get = list, put = list, remove = list
